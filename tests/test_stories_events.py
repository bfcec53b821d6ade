"""Stories are events, not topics: the same-event check, on texts written for these tests.

A real feed is dense with near-topic items (one vendor's two incidents, a genre's daily write-ups,
an outlet's templated notices, the year in every title); each case here is one such trap, beside
the reports of one event that must still join, in a young store and in an older one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.stories.engine import Doc, Engine, Params
from tests.test_stories_engine import _background

T0 = datetime(2031, 3, 4, 8, 0, tzinfo=UTC)


def _doc(i: int, title: str, body: str, outlet: str, hours: float = 0.0, url: str = "") -> Doc:
    return Doc(id=i, title=title, body=body, published_at=T0 + timedelta(hours=hours), outlet=outlet, url=url)


def _stories(docs: list[Doc], *, background: bool = False, batch: bool = False) -> dict[int, int]:
    eng = Engine()
    if background:
        _background(eng, start=5000, n=40)
    out = eng.add_batch(docs) if batch else [eng.add(d) for d in docs]
    assert eng.check() == []
    return {a.id: a.story for a in out}


# ------------------------------------------------------------------ traps

def test_a_shared_year_does_not_join_unrelated_chinese_and_english_items() -> None:
    docs = [
        _doc(1, "2024年度网络安全人才发展报告发布：缺口仍超百万",
             "报告显示，2024年网络安全岗位需求继续增长，高校培养规模跟不上企业招聘节奏。\n"
             "报告建议加强校企合作，扩大实训基地建设。", "人才观察"),
        _doc(2, "Harborline Database 2024 release adds vector search",
             "The 2024 release of Harborline Database adds vector search and faster replication.\n"
             "The project says upgrades from the 2023 line need no data migration.", "DevWire", 2),
        _doc(3, "2024 annual threat report: phishing still the top entry point",
             "Our 2024 annual report finds phishing remained the most common way in.\n"
             "Credential theft rose while exploit use was flat compared with 2023.", "SecBlog", 3),
    ]
    for cold in (True, False):
        s = _stories(docs, background=not cold)
        assert len({s[1], s[2], s[3]}) == 3, "the year glued unrelated items"


def test_two_write_ups_of_one_genre_about_different_products_stay_apart() -> None:
    docs = [
        _doc(1, "【漏洞复现】蓝鸟OA系统任意文件上传漏洞复现",
             "本文复现蓝鸟OA系统的任意文件上传漏洞，攻击者可上传恶意文件获取服务器权限。\n"
             "漏洞复现环境：蓝鸟OA 5.2，复现步骤如下。修复建议：升级到最新版本。", "安全研究笔记"),
        _doc(2, "【漏洞复现】青松路由器远程命令执行漏洞复现",
             "本文复现青松路由器的远程命令执行漏洞，攻击者可通过管理接口执行任意命令。\n"
             "漏洞复现环境：青松路由器固件 3.1，复现步骤如下。修复建议：关闭远程管理。", "白帽日记", 5),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] != s[2]


def test_two_notices_from_one_outlets_template_stay_apart() -> None:
    docs = [
        _doc(1, "10月26日专题会议 | 大模型安全前沿技术",
             "会议将邀请多位专家，围绕大模型越狱、提示注入与内容安全展开讨论。", "安全科学学报"),
        _doc(2, "10月26日专题会议 | 数据安全与区块链",
             "会议将邀请多位专家，围绕区块链存证、数据确权与隐私计算展开讨论。", "安全科学学报", 1),
    ]
    for background in (False, True):
        s = _stories(docs, background=background, batch=True)
        assert s[1] != s[2]


def test_two_incidents_of_one_vendor_with_different_cve_ids_stay_apart() -> None:
    docs = [
        _doc(1, "Fabrikam patches actively exploited VPN flaw CVE-2031-11111",
             "Fabrikam released fixes for CVE-2031-11111, an authentication bypass in its VPN gateway "
             "that attackers are exploiting. Customers should update the gateway firmware now.", "SecDaily"),
        _doc(2, "Fabrikam fixes critical firewall bug CVE-2031-22222 under attack",
             "Fabrikam warned that CVE-2031-22222, a remote code execution bug in its firewall, is being "
             "exploited in the wild. Patches are available for all supported firewall releases.",
             "CyberNews", 20),
        _doc(3, "Fabrikam 修复被利用的防火墙漏洞 CVE-2031-22222",
             "Fabrikam 表示，防火墙远程代码执行漏洞 CVE-2031-22222 已遭在野利用，建议用户尽快升级。",
             "安全快讯", 22),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] != s[2], "two incidents of one vendor were joined"
        assert s[2] == s[3], "one incident in two languages was split"


def test_two_releases_of_one_product_stay_apart() -> None:
    body = "This release updates the bundled browser engine and fixes several security bugs.\n{}"
    docs = [
        _doc(1, "New Release: Lantern Browser 14.0a9", body.format("Alpha testers get the new toolbar."),
             "Lantern Project blog"),
        _doc(2, "New Release: Lantern Browser 13.5.7", body.format("Stable users get the engine update."),
             "Lantern Project blog", 2),
    ]
    s = _stories(docs, background=True)
    assert s[1] != s[2]


def test_one_name_in_common_is_a_topic_not_an_event() -> None:
    docs = [
        _doc(1, "Contoso launches its first folding tablet",
             "Contoso unveiled a folding tablet with a 12-inch screen, priced at 999 dollars.\n"
             "Pre-orders open next week in North America.", "GadgetDesk"),
        _doc(2, "Contoso confirms data breach at its support portal",
             "Contoso said attackers accessed its customer support portal and stole ticket data.\n"
             "The company has reset passwords and informed regulators.", "BreachWatch", 4),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] != s[2]


# ------------------------------------------------------------------ one event still joins

EVENT_3 = [
    ("Tailwind Bank says hackers stole 2.3 million customer records",
     "Tailwind Bank disclosed that hackers stole 2.3 million customer records from a file-transfer server.\n"
     "The bank said card numbers were not exposed and it has notified regulators in three states.",
     "FinSec Today"),
    ("Tailwind Bank breach exposes 2.3M customers after file-transfer hack",
     "A breach at Tailwind Bank exposed data of 2.3 million customers, the lender said on Monday.\n"
     "Attackers abused the bank's file-transfer server; card numbers were not affected.", "The Ledger"),
    ("顺风银行数据泄露：230万客户信息被盗",
     "顺风银行（Tailwind Bank）周一披露，黑客入侵其文件传输服务器，窃取了230万名客户的信息。\n"
     "该银行表示，银行卡号未受影响，已向监管机构报告。", "金融安全观察"),
]


def test_one_event_told_by_three_outlets_in_two_languages_joins() -> None:
    docs = [_doc(i + 1, t, b, o, hours=3 * i) for i, (t, b, o) in enumerate(EVENT_3)]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert len({s[1], s[2], s[3]}) == 1
    assert len(set(_stories(docs, batch=True).values())) == 1


# ------------------------------------------------------------------ short and templated items

def test_short_items_with_different_titles_stay_apart_and_same_titled_copies_fold() -> None:
    frame = "Home | Advisories | Podcasts | About\nSubscribe to the daily podcast for the latest news."
    docs = [
        _doc(1, "Daily Security Podcast Episode 412: router botnets", frame, "PodFeed", 0,
             "https://pod.example.com/412"),
        _doc(2, "Daily Security Podcast Episode 413: cloud keys", frame, "PodFeed", 24,
             "https://pod.example.com/413"),
        _doc(3, "Daily Security Podcast Episode 414: printer flaws", frame, "PodFeed", 48,
             "https://pod.example.com/414"),
        _doc(4, "Daily Security Podcast Episode 413: cloud keys", frame, "Mirror Aggregator", 30,
             "https://pod.example.com/413"),
    ]
    eng = Engine()
    out = {a.id: a for a in eng.add_batch(docs)}
    assert out[2].duplicate_of is None and out[3].duplicate_of is None, "a series' episodes folded"
    assert out[4].duplicate_of == 2, "another outlet's copy of one episode did not fold"
    assert len({out[1].story, out[2].story, out[3].story}) == 3


def test_a_headline_alone_joins_its_event_on_one_name_only_when_it_is_that_close() -> None:
    """An aggregator's headline shares the event's name and genre words only; it is the event's
    when its words are mostly the report's, and the company's other news when they are not."""
    docs = [
        _doc(1, "Vexorline patches exploited flaw in its VPN gateways",
             "Vexorline released fixes for a flaw in its VPN gateways that attackers have exploited since "
             "March.\nThe company urged customers to install the update and to rotate credentials stored on "
             "the devices.\nResearchers at a response firm said the intrusions began with the gateway's web "
             "portal.", "NetDefense Daily"),
        _doc(2, "Vexorline fixes VPN flaw exploited in attacks", "", "Headline Aggregator", 5),
        _doc(3, "Vexorline opens a new office in Lisbon", "", "Headline Aggregator", 6),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[2] == s[1], "the headline of the event stayed apart"
        assert s[3] != s[1], "the company's other news joined through its name"


def test_two_headlines_sharing_only_a_name_stay_apart_however_close() -> None:
    """Two feed lines of a few words each are close on the one name they share: a company's
    webinar and its hiring drive are two items, not one event."""
    docs = [
        _doc(1, "Vexorline webinar next week", "", "Feed One"),
        _doc(2, "Vexorline hiring drive next week", "", "Feed Two", 3),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] != s[2], "two headlines joined on one name"


def test_catalogue_notices_from_one_template_are_not_copies() -> None:
    body = ("The agency added {n} vulnerabilities to its catalogue of exploited flaws, based on evidence "
            "of active exploitation. Federal agencies must patch them by the due date.\n"
            "Such vulnerabilities are frequent attack vectors and pose significant risks.")
    docs = [
        _doc(1, "Agency adds three known exploited vulnerabilities to catalogue", body.format(n="three"),
             "Gov Alerts", 0),
        _doc(2, "Agency adds two known exploited vulnerabilities to catalogue", body.format(n="two"),
             "Gov Alerts", 30),
    ]
    out = Engine().add_batch(docs)
    assert out[1].duplicate_of is None


def test_a_roundups_repost_folds_into_it_but_the_roundup_joins_no_story() -> None:
    roundup = ("Morning Brief: Tailwind Bank breach, Contoso tablet, Lantern release",
               "1. Tailwind Bank says hackers stole 2.3 million customer records from a transfer server.\n"
               "2. Contoso unveiled a folding tablet with a 12-inch screen.\n"
               "3. Lantern Browser shipped a new stable release with security fixes.\n"
               "That is all for this morning; see you tomorrow.", "Brief Daily")
    docs = [_doc(i + 1, t, b, o, hours=i) for i, (t, b, o) in enumerate(EVENT_3[:2])]
    docs.append(_doc(3, *roundup, hours=3))
    docs.append(_doc(4, roundup[0], roundup[1] + "\nReposted with permission.", "Repost Hub", 5))
    eng = Engine()
    out = {a.id: a for a in (eng.add(d) for d in docs)}
    assert out[4].duplicate_of == 3, "the round-up's repost did not fold into it"
    assert out[3].story not in {out[1].story, out[2].story}


# ------------------------------------------------------------------ languages beyond zh and en

def test_an_italian_and_a_german_report_join_while_unrelated_italian_items_stay_apart() -> None:
    docs = [
        _doc(1, "Attacco ransomware a Velmora Logistics: fermi i magazzini di Verona",
             "Velmora Logistics ha confermato un attacco ransomware che ha bloccato i magazzini di Verona.\n"
             "Il gruppo Black Kestrel ha rivendicato l'attacco e chiede un riscatto.\n"
             "L'azienda ha avvisato il Garante e sta ripristinando i sistemi dai backup.", "Sicurezza Oggi"),
        _doc(2, "Ransomware-Angriff auf Velmora Logistics legt Lager in Verona lahm",
             "Velmora Logistics hat einen Ransomware-Angriff bestätigt, der die Lager in Verona stilllegt.\n"
             "Die Gruppe Black Kestrel bekennt sich zu dem Angriff und fordert Lösegeld.\n"
             "Das Unternehmen stellt die Systeme aus Sicherungen wieder her.", "IT-Sicherheit Heute", 3),
        _doc(3, "Nuove regole per la sicurezza delle reti scolastiche",
             "Il ministero ha pubblicato nuove linee guida per la sicurezza delle reti nelle scuole.\n"
             "Le scuole dovranno aggiornare i sistemi entro la fine dell'anno.", "Aggregatore Notizie", 5),
        _doc(4, "Truffa dei pacchi: la polizia postale avvisa gli utenti",
             "La polizia postale segnala una nuova truffa via SMS che imita le consegne dei pacchi.\n"
             "Gli utenti non devono aprire i collegamenti né inserire i dati della carta.",
             "Aggregatore Notizie", 6),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] == s[2], "one event in Italian and German was split"
        assert len({s[1], s[3], s[4]}) == 3, "unrelated Italian items were joined"


def test_cold_start_seeds_shape_five_reports_of_one_deal_join_in_an_empty_store() -> None:
    # The shape of the sample articles: one deal, two outlets, five reports, nothing else stored.
    titles = ["青岚汽车与北辰科技合作开发车载大模型", "北辰科技证实与青岚汽车合作：车载AI明年上车",
              "青岚牵手北辰，车载大模型之争升温", "放弃自研？青岚汽车选择北辰科技大模型",
              "北辰科技股价大涨，青岚汽车合作细节曝光"]
    bodies = ["青岚汽车与北辰科技宣布合作，北辰科技将为青岚汽车的新车型提供车载大模型，明年随新车上市。",
              "北辰科技董事长证实，公司已与青岚汽车达成合作，车载大模型将支持语音助手和导航。",
              "青岚汽车选择北辰科技作为车载大模型伙伴，业内认为其他车企也将加快寻找合作方。",
              "消息人士称，青岚汽车评估了多家公司的模型后，最终选择北辰科技，原因是本地化能力。",
              "受合作消息影响，北辰科技股价上涨，青岚汽车表示合作细节将在发布会上公布。"]
    outlets = ["车讯网", "科技日报", "科技日报", "科技日报", "科技日报"]
    docs = [_doc(i + 1, t, b, o, hours=i * 5) for i, (t, b, o) in enumerate(zip(titles, bodies, outlets,
                                                                              strict=True))]
    assert len(set(_stories(docs, batch=True).values())) == 1
    assert len(set(_stories(docs).values())) == 1


def test_params_defaults_keep_the_same_event_check_on() -> None:
    p = Params()
    assert p.min_shared_terms >= 2 and p.evidence > 0 and p.same_outlet_evidence > 0


def test_flaws_of_two_vendors_in_one_product_class_stay_apart() -> None:
    docs = [
        _doc(1, "Ravenfield patches zero-click remote code execution flaw in its NAS devices",
             "Ravenfield fixed a critical zero-click flaw in the photo service of its NAS devices that lets "
             "remote attackers run code. The bug was shown at a hacking contest last week.", "StorageNews"),
        _doc(2, "Ravenfield NAS zero-click RCE fixed after contest demo",
             "The zero-click remote code execution flaw in Ravenfield NAS devices, demonstrated at a hacking "
             "contest, is fixed in the latest firmware; owners should update now.", "SecDaily", 3),
        _doc(3, "Kestrelnet won't fix critical remote code execution flaw in end-of-life NAS devices",
             "Kestrelnet says it will not patch a critical remote code execution flaw in NAS devices that "
             "reached end of life; owners should replace them.", "CyberNews", 5),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] == s[2], "one vendor's flaw in two reports was split"
        assert s[3] != s[1], "two vendors' flaws were joined"


def test_one_outlets_two_posts_about_one_company_s_different_news_stay_apart() -> None:
    """A science desk writes about one company twice in two days: a satellite lost, then a sale.
    Between one outlet's own pages the shared name and field are its beat, not one event: they
    share the company, its field and several words, and must still stay apart."""
    docs = [
        _doc(1, "北风航天制造的一颗气象卫星在轨道上解体",
             "北风航天为气象机构制造的一颗卫星周四在轨道上解体，地面站随后失去联系。\n"
             "北风航天表示正在调查原因，这颗卫星于五年前发射，原计划服役十五年。", "科技快讯"),
        _doc(2, "北风航天考虑出售旗下的太空业务",
             "据知情人士透露，北风航天正在考虑出售旗下的太空业务，以便专注于民用飞机。\n"
             "该业务包括卫星制造和发射服务，潜在买家包括多家私募基金。", "科技快讯", 20),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] != s[2], "one outlet's two posts about one company joined"


def test_a_month_or_common_word_in_a_title_is_no_company_name() -> None:
    """Title case capitalises every word: "August" and "Hospital" are not names, so a report
    naming neither the company nor any other does not conflict with the company's story."""
    docs = [
        _doc(1, "Harborline Health System notifies 412,000 patients of data breach",
             "Harborline Health System, a hospital network in Ohio, began notifying 412,000 patients "
             "that attackers stole their records in a breach last August.\n"
             "The network said names, dates of birth and insurance numbers were taken.", "Relay Desk"),
        _doc(2, "Hospital network says August breach exposed 412,000 patients",
             "Harborline Health System told regulators that the August intrusion exposed data of "
             "412,000 patients.\nHarborline said it found no sign that the stolen records were misused.",
             "Health IT Wire", 5),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] == s[2], "a month in the title read as a different company"


def test_an_aggregator_naming_one_event_in_many_titles_has_no_template_of_the_names() -> None:
    """An aggregator relays three short reports of one takedown, each naming the gang and its
    site: the names are not the outlet's title template (a phrase is), so they still join another
    outlet's full report of it."""
    docs = [
        _doc(1, "Police arrest four Kestrel suspects, seize Nightjar sites", "", "Relay Desk"),
        _doc(2, "Europol seizes Nightjar leak sites, four Kestrel suspects held",
             "Police in four countries seized the Nightjar leak sites and held four suspects tied to "
             "the Kestrel ransomware operation.\nEuropol said the group extorted more than 200 victims.",
             "The Daily Byte", 1),
        _doc(3, "Nightjar takedown: two Kestrel operators charged in Texas", "", "Relay Desk", 3),
        _doc(4, "Kestrel affiliates used Nightjar portal to shame victims", "", "Relay Desk", 5),
    ]
    for batch in (False, True):
        s = _stories(docs, batch=batch)
        assert s[1] == s[2] == s[3] == s[4], "the event's names were taken for the aggregator's template"


def test_a_newsletter_citing_an_events_flaws_in_passing_stays_out_of_its_story() -> None:
    """A weekly newsletter about password rules ends with a line on the vendor's patch day: close
    by the shared CVE ids, but its title names other things, so it does not join that story."""
    patch = ("Quillsoft's monthly update fixes 61 flaws, including CVE-2031-1111 in the print spooler "
             "and CVE-2031-2222 in the mail client, both exploited before the fix.\n"
             "Admins should apply the update first on internet-facing servers.")
    docs = [
        _doc(1, "Quillsoft patch day fixes two exploited zero-days", patch, "The Daily Byte"),
        _doc(2, "Quillsoft fixes 61 flaws, two under attack", patch.replace("Admins", "Teams"),
             "Relay Desk", 1),
        _doc(3, "Quillsoft monthly update: CVE-2031-1111 and CVE-2031-2222 exploited",
             "Quillsoft fixed CVE-2031-1111 and CVE-2031-2222, both used in attacks, among 61 flaws.",
             "Patch Watch", 2),
        _doc(4, "What Harbor Standards' new password rules mean for admins",
             "Harbor Standards now asks for long passphrases instead of forced rotation.\n"
             "Composition rules and security questions are gone from the guidance.\n"
             "In other news: Quillsoft fixed CVE-2031-1111 and CVE-2031-2222 this week.",
             "Talon Newsletter", 20),
    ]
    for background in (False, True):
        s = _stories(docs, background=background)
        assert s[1] == s[2] == s[3]
        assert s[4] != s[1], "a newsletter's passing mention joined the event"


def test_a_name_after_different_verbs_is_no_title_template() -> None:
    """An aggregator's three title-only items each put the gang's name after a verb ("seizes
    Vexor", "indicts Vexor", "raids Vexor"): the seven characters they share across the
    space are no phrase, so the name stays and the items join the full report."""
    docs = [
        _doc(1, "Vexor ransomware gang dismantled in international operation",
             "Europol and the FBI seized the Vexor ransomware leak sites this week.\n"
             "Prosecutors indicted two Vexor operators, Ivanov and Sokol; Thai police raided a hideout "
             "in Phuket.\n"
             "The Vexor group extorted more than 1,000 victims since 2023.", "The Daily Byte"),
        _doc(5, "Police take down Vexor ransomware: sites seized, operators charged",
             "Police seized the Vexor leak sites; Vexor operators Ivanov and Sokol were indicted.\n"
             "Thai officers raided a Vexor hideout in Phuket and arrested four people.",
             "The Ledger", 0.5),
        _doc(2, "Europol seizes Vexor leak sites", "", "Relay Desk", 1),
        _doc(3, "US indicts Vexor operators Ivanov and Sokol", "", "Relay Desk", 2),
        _doc(4, "Thai police raids Vexor hideout in Phuket", "", "Relay Desk", 3),
    ]
    for batch in (False, True):
        s = _stories(docs, batch=batch)
        assert s[1] == s[2] == s[3] == s[4] == s[5], "a name after a verb was taken for the template"


def test_a_story_does_not_drift_to_another_flaw_through_pages_naming_none() -> None:
    """One flaw's reports, then follow-ups naming no CVE id, then, four days after the first
    reports, the same gang exploiting the vendor's next flaw: the story is still the first flaw's
    (what half its members name), so the new flaw starts its own."""
    gateway = ("The Stormfly gang is behind the attacks on Quillsoft Gateway appliances; Quillsoft urges "
               "admins to patch and to restrict the management interface of Quillsoft Gateway.")
    docs = [
        _doc(1, "Quillsoft Gateway flaw CVE-2031-1111 exploited by Stormfly",
             f"Attackers exploit CVE-2031-1111 in Quillsoft Gateway.\n{gateway}", "The Daily Byte"),
        _doc(2, "Stormfly exploits Quillsoft Gateway bug CVE-2031-1111",
             "CVE-2031-1111 lets the Stormfly gang bypass authentication on Quillsoft Gateway.\n"
             "Quillsoft shipped fixed builds on Monday and thanked the researchers who reported it.",
             "Patch Watch", 1),
        _doc(3, "Stormfly keeps hitting Quillsoft Gateway: what admins should do",
             f"{gateway}\nAdmins should check Quillsoft Gateway logs for new accounts.", "Relay Desk", 50),
        _doc(4, "Quillsoft Gateway attacks by Stormfly continue, Quillsoft says",
             f"{gateway}\nQuillsoft says Stormfly attacks continue on unpatched appliances.",
             "The Ledger", 70),
        _doc(5, "Stormfly now exploits a second Quillsoft Gateway flaw, CVE-2031-2222",
             f"Stormfly exploits CVE-2031-2222, a second Quillsoft Gateway flaw.\n{gateway}",
             "The Daily Byte", 100),
    ]
    s = _stories(docs)
    assert s[1] == s[2] == s[3] == s[4], "one flaw's reports and follow-ups were split"
    assert s[5] != s[1], "the story drifted to the vendor's next flaw"
