"""The story engine on pure values: duplicates, boilerplate, stories, round-ups, cost.

Every text here is written for the tests (no publisher text), so nothing needs ../shared.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.stories import features as F
from bot.stories.engine import Doc, Engine, Params
from bot.stories.roundup import is_roundup

T0 = datetime(2025, 2, 12, 8, 0, tzinfo=UTC)

# ---------------------------------------------------------------- corpus

_ZH_WORDS = ("网络 安全 漏洞 攻击 厂商 补丁 服务器 用户 数据 泄露 研究人员 发现 报告 恶意软件 勒索 团伙 警方 "
             "逮捕 政府 监管 芯片 手机 电池 汽车 工厂 市场 投资 股价 平台 应用 模型 训练 算法 云计算 "
             "运营商 设备 固件 版本 升级 通告 风险 企业 客户 银行 支付 交易 平台 开源 社区 代码 仓库").split()
_EN_WORDS = ("network security flaw attack vendor patch server users data breach researchers found report "
             "malware ransom gang police arrest government regulator chip phone battery car factory market "
             "investment shares platform app model training algorithm cloud carrier device firmware version "
             "upgrade advisory risk company customer bank payment trade open source community code").split()


def paragraph(rng: random.Random, zh: bool, n: int = 40) -> str:
    words = _ZH_WORDS if zh else _EN_WORDS
    sep = "" if zh else " "
    out = []
    for i in range(n):
        out.append(rng.choice(words) + ("，" if zh and i % 7 == 6 else ""))
    return sep.join(out) + ("。" if zh else ".")


def base_article(seed: int, zh: bool = True, paragraphs: int = 8) -> tuple[str, str]:
    rng = random.Random(seed)
    title = (f"编号{seed}事件：" if zh else f"Case {seed}: ") + paragraph(rng, zh, 6).rstrip("。.")
    body = "\n\n".join(f"{seed}-{i} " + paragraph(rng, zh) for i in range(paragraphs))
    return title, body


def drop_paragraph(body: str) -> str:
    parts = body.split("\n\n")
    return "\n\n".join(parts[:3] + parts[4:])


def add_header_footer(body: str) -> str:
    return ("本文转载自合作媒体，版权归原作者所有。\n\n" + body
            + "\n\n免责声明：本文仅代表作者观点。\n扫码关注我们，获取更多资讯。")


def change_chars(body: str, share: float = 0.03, seed: int = 7) -> str:
    rng = random.Random(seed)
    chars = list(body)
    idx = [i for i, c in enumerate(chars) if not c.isspace()]
    for i in rng.sample(idx, int(len(idx) * share)):
        chars[i] = rng.choice("甲乙丙丁戊己庚辛壬癸xyzq")
    return "".join(chars)


def truncate(body: str, share: float = 0.2) -> str:
    return body[: int(len(body) * (1 - share))]


def doc(i: int, title: str, body: str, hours: float = 0.0, outlet: str = "outlet-a") -> Doc:
    return Doc(id=i, title=title, body=body, published_at=T0 + timedelta(hours=hours), outlet=outlet)


def _background(eng: Engine, start: int = 1000, n: int = 30) -> None:
    """Unrelated articles so document frequencies mean something."""
    for k in range(n):
        t, b = base_article(start + k, zh=k % 2 == 0, paragraphs=3)
        eng.add(doc(start + k, t, b, hours=-1 - k * 0.5, outlet=f"bg-{k % 5}"))


# ---------------------------------------------------------------- duplicates

REPOSTS = {
    "drop_paragraph": drop_paragraph,
    "header_footer": add_header_footer,
    "change_3pct": change_chars,
    "truncate_20pct": truncate,
    "all_at_once": lambda b: truncate(change_chars(add_header_footer(drop_paragraph(b))), 0.1),
}


def test_synthetic_reposts_are_folded_into_the_first_copy() -> None:
    eng = Engine()
    _background(eng)
    title, body = base_article(1)
    first = eng.add(doc(1, title, body))
    assert first.duplicate_of is None
    for n, (name, fn) in enumerate(REPOSTS.items(), start=2):
        a = eng.add(doc(n, title, fn(body), hours=n, outlet=f"mirror-{n}"))
        assert a.duplicate_of == 1, name
        assert a.story == first.story, name  # a duplicate's outlet still counts for the story


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), zh=st.booleans(), which=st.sampled_from(sorted(REPOSTS)))
def test_reposts_fold_for_any_text(seed: int, zh: bool, which: str) -> None:
    eng = Engine()
    title, body = base_article(seed, zh)
    eng.add(doc(1, title, body))
    # an unrelated article of the same outlet in between must not change anything
    t2, b2 = base_article(seed + 1, zh)
    assert eng.add(doc(2, t2, b2, hours=1)).duplicate_of is None
    assert eng.add(doc(3, title, REPOSTS[which](body), hours=2, outlet="mirror")).duplicate_of == 1


def test_different_articles_are_not_duplicates() -> None:
    eng = Engine()
    for i in range(20):
        t, b = base_article(i, zh=i % 2 == 0)
        assert eng.add(doc(i + 1, t, b, hours=i)).duplicate_of is None


NAV = "\n".join(["首页", "新闻", "漏洞", "工具", "活动", "社区", "学院", "安全导航", "专栏", "精选专题",
                 "Home", "Cyber Crime", "Malware", "Data Breach", "Contact me", "MUST READ",
                 "Zimbra-like users targeted in yet another exploit wave",
                 "Reading a big annual threat landscape report",
                 "Weaponizing a cloud tracing service for command and control",
                 "Some malware newsletter round of the week",
                 "Footer", "Terms", "Privacy", "Security", "Status", "Docs", "Contact"])


def test_pages_sharing_only_site_navigation_are_not_duplicates() -> None:
    eng = Engine()
    for i in range(6):
        title = f"Page {i}: " + base_article(200 + i, zh=False)[0]
        own = paragraph(random.Random(300 + i), zh=False, n=12)  # a short text of its own
        a = eng.add(doc(i + 1, title, f"{title}\n\n{NAV}\n\n{own}\n\n{NAV}", hours=i, outlet="aggregator"))
        assert a.duplicate_of is None, i


def test_a_repost_between_navigation_pages_still_folds() -> None:
    eng = Engine()
    title, body = base_article(5, zh=False)
    eng.add(doc(1, title, f"{NAV}\n\n{body}", outlet="aggregator"))
    for i in range(2, 5):
        t, b = base_article(400 + i, zh=False, paragraphs=2)
        eng.add(doc(i, t, f"{NAV}\n\n{b}", hours=i, outlet="aggregator"))
    repost = eng.add(doc(9, title, f"{NAV}\n\n{truncate(body)}", hours=6, outlet="aggregator"))
    assert repost.duplicate_of == 1


def test_another_outlet_copying_the_text_under_a_new_title_is_a_duplicate() -> None:
    eng = Engine()
    _background(eng)
    title, body = base_article(11, zh=False)
    eng.add(doc(1, title, body, outlet="vendor-advisories"))
    retitled = "Mailing list: " + base_article(12, zh=False)[0]  # shares no word with the title
    copy = doc(2, retitled, add_header_footer(body), hours=3, outlet="mailing-list")
    assert eng.add(copy).duplicate_of == 1
    # A short text under another title is not enough: one sentence is often quoted.
    short_t, short_b = base_article(13, zh=False, paragraphs=1)
    eng.add(doc(3, short_t, short_b, hours=4, outlet="vendor-advisories"))
    other = "Digest: " + base_article(14, zh=False)[0]
    assert eng.add(doc(4, other, short_b, hours=5, outlet="mailing-list")).duplicate_of is None


def test_an_outlets_second_page_is_not_taken_for_a_copy_of_its_first() -> None:
    # Until a third page shows which lines are the site's frame, two pages of one outlet look
    # alike; with similar but different titles they are two pages, not a copy.
    eng = Engine()
    frame = "\n".join(paragraph(random.Random(900 + i), zh=False, n=12) for i in range(12))
    first = eng.add(doc(1, "octo forked octo/tool from someone/tool", f"{frame}\n\nforked", outlet="feed"))
    second = eng.add(doc(2, "octo starred someone/tool", f"{frame}\n\nstarred", hours=1, outlet="feed"))
    assert first.duplicate_of is None and second.duplicate_of is None
    # The same title is a copy even then.
    assert eng.add(doc(3, "octo starred someone/tool", f"{frame}\n\nstarred", hours=2,
                       outlet="feed")).duplicate_of == 2


def test_duplicates_only_within_the_window() -> None:
    eng = Engine(Params(dup_window_hours=48))
    title, body = base_article(3)
    eng.add(doc(1, title, body))
    assert eng.add(doc(2, title, body, hours=24 * 5)).duplicate_of is None


# ---------------------------------------------------------------- stories (own texts)

# One fictional event told by five outlets (three Chinese, two English), plus an unrelated
# article about the same company and unrelated news. As real Chinese reports do, two of them
# give the companies' Latin names once: names are what the two languages share.
EVENT = [
    ("北风机器人以24亿美元收购蓝鳍传感器公司",
     "北风机器人公司（Northwind Robotics）周二宣布，将以24亿美元现金收购蓝鳍传感器公司（Bluefin Sensors），"
     "交易预计在第三季度完成。\n"
     "蓝鳍传感器主要生产激光雷达和工业视觉模组，北风机器人希望借此补齐自动驾驶叉车的感知能力。\n"
     "北风机器人首席执行官表示，收购完成后蓝鳍团队将保留在波特兰的研发中心。\n"
     "消息公布后，北风机器人股价盘前上涨4%，蓝鳍传感器股价上涨18%。", "科技日报"),
    ("北风机器人宣布收购蓝鳍传感器 激光雷达业务成焦点",
     "据报道，北风机器人（Northwind）已与蓝鳍传感器（Bluefin）达成协议，收购价格为24亿美元。\n"
     "分析人士认为，蓝鳍传感器的激光雷达技术将帮助北风机器人扩大仓储自动化市场份额。\n"
     "北风机器人称交易仍需监管部门批准，预计第三季度完成交割。", "产业观察"),
    ("24亿美元！北风机器人拿下蓝鳍传感器",
     "北风机器人收购蓝鳍传感器一事尘埃落定，交易金额24亿美元。\n"
     "蓝鳍传感器成立于2016年，激光雷达产品已用于多家物流企业的自动驾驶叉车。\n"
     "业内人士指出，此次收购是今年机器人行业规模最大的一笔并购。", "财经快讯"),
    ("Northwind Robotics to buy Bluefin Sensors for $2.4 billion",
     "Northwind Robotics said on Tuesday it will acquire Bluefin Sensors for $2.4 billion in cash.\n"
     "Bluefin makes lidar and industrial vision modules; Northwind wants them for its autonomous forklifts.\n"
     "The deal is expected to close in the third quarter, pending regulatory approval.\n"
     "Northwind shares rose 4% before the bell while Bluefin jumped 18%.", "Daily Wire Service"),
    ("Northwind bets on lidar with Bluefin Sensors deal",
     "The $2.4 billion acquisition of Bluefin Sensors gives Northwind Robotics its own lidar line.\n"
     "Analysts said Bluefin's sensors would help Northwind compete in warehouse automation.\n"
     "Bluefin's research centre in Portland will stay open after the deal closes.", "Tech Ledger"),
]
SAME_COMPANY = ("北风机器人在俄亥俄州新建工厂 将招聘800名员工",
                "北风机器人宣布在俄亥俄州投资建设新工厂，生产仓储机器人，预计明年投产。\n"
                "新工厂将招聘约800名员工，当地政府提供了税收优惠。\n"
                "北风机器人表示，新工厂将把交付周期缩短一半。", "产业观察")
UNRELATED = [
    ("某省发布暴雨橙色预警 多地学校停课", "气象台发布暴雨橙色预警，预计未来24小时多地将出现大暴雨。\n"
     "教育部门通知部分学校停课一天，交通部门提醒市民注意出行安全。", "本地新闻"),
    ("City council approves new bike lanes downtown", "The city council voted 7-2 to approve twelve miles "
     "of protected bike lanes downtown.\nConstruction starts in spring and will take two years.", "Metro"),
    ("新款电动汽车续航突破800公里", "某车企发布新款电动汽车，官方续航达到800公里，搭载新一代电池。\n"
     "该车型将于下月开启预订，售价尚未公布。", "汽车频道"),
    ("Central bank holds interest rates steady",
     "The central bank kept its benchmark rate unchanged at 4.5%.\n"
     "Officials said inflation was cooling but remained above target.", "Money Desk"),
    ("开源数据库发布重大版本更新", "一款流行的开源数据库发布新版本，查询性能提升30%，并支持向量检索。\n"
     "社区表示新版本兼容旧版数据格式。", "开发者周刊"),
    ("Museum returns ancient artefacts to their country of origin", "A national museum returned 40 "
     "artefacts after a years-long review of their provenance.\nA ceremony was held on Monday.", "Culture"),
]


def _event_engine() -> tuple[Engine, list[int], int, list[int]]:
    eng = Engine()
    _background(eng)
    n = 1
    ids: list[int] = []
    for k, (title, body, outlet) in enumerate(EVENT):
        eng.add(doc(n, title, body, hours=k * 3, outlet=outlet))
        ids.append(n)
        n += 1
    other = n
    eng.add(doc(n, SAME_COMPANY[0], SAME_COMPANY[1], hours=5, outlet=SAME_COMPANY[2]))
    n += 1
    unrelated = []
    for k, (title, body, outlet) in enumerate(UNRELATED):
        eng.add(doc(n, title, body, hours=k, outlet=outlet))
        unrelated.append(n)
        n += 1
    return eng, ids, other, unrelated


def test_one_event_in_two_languages_is_one_story_and_same_company_news_is_not() -> None:
    eng, ids, other, unrelated = _event_engine()
    stories = {eng.items[i].story for i in ids}
    assert len(stories) == 1, [(eng.items[i].title, eng.items[i].story) for i in ids]
    (sid,) = stories
    assert eng.items[other].story != sid
    assert all(eng.items[u].story != sid for u in unrelated)
    assert sorted(eng.stories[sid].members) == ids
    assert eng.headline(sid) in ids


def test_a_chinese_and_an_english_report_sharing_one_generic_word_stay_apart() -> None:
    # Tiny texts make every cosine large; the bar is raised to where the full cross-language
    # rescaling (no shared names) would still have joined them.
    eng = Engine(Params(similarity=0.2))
    _background(eng)
    zh = eng.add(doc(1, "漫游者游戏服务器被植入webshell 玩家数据遭窃",
                     "研究人员披露，一款热门游戏的服务器被植入webshell，攻击者借此窃取了玩家数据。\n"
                     "厂商尚未发布补丁，建议玩家暂时关闭游戏内的聊天功能。\n"
                     "公司客服表示，受影响的账号将获赠游戏道具作为补偿，充值记录不受影响。",
                     outlet="游戏安全"))
    en = eng.add(doc(2, "Over 12,000 Fenwall firewalls exposed to a webshell flaw",
                     "Scans found more than 12,000 office firewalls still exposed to a flaw in FenOS "
                     "that drops a webshell.\n"
                     "The vendor shipped a fix last month, but most devices have not been updated.\n"
                     "Administrators should restrict the management interface to trusted networks.",
                     hours=2, outlet="Wire"))
    assert zh.story != en.story


_WORDS = st.text(alphabet="abcdefgh", min_size=1, max_size=9)


@given(title=st.lists(_WORDS, min_size=1, max_size=8), other=st.lists(_WORDS, min_size=1, max_size=8))
def test_title_template_removal_leaves_only_whole_words(title: list[str], other: list[str]) -> None:
    text = " ".join(title)
    left = F.blank_grams(text, F.title_grams(" ".join(other), 7), 7).split()
    assert all(w in title for w in left)


def test_roundups_are_recognised() -> None:
    for title in ("FreeBuf早报 | 某某漏洞；某某事件", "极客早知道：三件事", "安全周报第5期", "牛览：本周要闻",
                  "安全动态回顾|两件大事", "⚡ Weekly Recap: threats and tools", "Daily Digest 2025-02-11",
                  "每日安全资讯（2025-03-01）", "SecNews 2025-03-02 Review",
                  # A span of days or a numbered week: a periodic digest of that span's events.
                  "CERT-XY 5-11 marzo: due campagne e un fornitore sotto attacco", "Threats of Mar 5–11",
                  "安全态势（3月5日-3月11日）", "Week 10: what happened", "第10周威胁情报"):
        assert is_roundup(title), title
    for title in ("北风机器人以24亿美元收购蓝鳍传感器公司", "Northwind Robotics to buy Bluefin Sensors",
                  "Patch Tuesday fixes 63 flaws", "Police arrest 4-5 suspects in March raid",
                  "Fix for 10-11 bugs in build 5"):
        assert not is_roundup(title), title


def test_a_roundup_mentioning_two_stories_joins_neither() -> None:
    eng, ids, other, _ = _event_engine()
    brief_body = "\n".join([EVENT[0][0], EVENT[0][1], SAME_COMPANY[0], SAME_COMPANY[1], EVENT[3][1]])
    a = eng.add(doc(99, "科技早报 | 北风机器人收购蓝鳍传感器；北风机器人新建工厂", brief_body, hours=6,
                    outlet="早报号"))
    assert a.story not in {eng.items[ids[0]].story, eng.items[other].story}
    assert eng.stories[a.story].members == [99]
    # and a later report of the event still joins the event, not the round-up
    b = eng.add(doc(100, "蓝鳍传感器被北风机器人以24亿美元收购，激光雷达团队保留",
                    "北风机器人以24亿美元收购蓝鳍传感器，蓝鳍的激光雷达研发中心将保留在波特兰。\n"
                    "交易预计第三季度完成，需要监管批准。", hours=7, outlet="新媒体"))
    assert b.story == eng.items[ids[0]].story


def test_outside_the_window_a_report_starts_a_new_story() -> None:
    eng = Engine(Params(window_hours=24))
    _background(eng)
    t, b, o = EVENT[0]
    first = eng.add(doc(1, t, b, outlet=o))
    t2, b2, o2 = EVENT[1]
    later = eng.add(doc(2, t2, b2, hours=24 * 4, outlet=o2))
    assert later.story != first.story


def test_assignment_is_deterministic_and_batching_by_one_equals_single_adds() -> None:
    def run(batch: bool) -> list[tuple[int, int, int | None]]:
        eng = Engine()
        docs = []
        for k, (title, body, outlet) in enumerate([*EVENT, SAME_COMPANY, *UNRELATED]):
            docs.append(doc(k + 1, title, body, hours=k, outlet=outlet))
        out = []
        for d in docs:
            a = eng.add_batch([d])[0] if batch else eng.add(d)
            out.append((a.id, a.story, a.duplicate_of))
        return out

    assert run(False) == run(True) == run(False)


def test_an_edited_article_is_decided_afresh() -> None:
    eng, ids, _other, _unrelated = _event_engine()
    sid = eng.items[ids[0]].story
    t, b, o = UNRELATED[0]
    eng.add(doc(ids[1], t, b, hours=3, outlet=o))  # the same id now says something else
    assert eng.items[ids[1]].story != sid
    assert ids[1] not in eng.stories[sid].members


# ---------------------------------------------------------------- cost


def _stream(n: int) -> list[Doc]:
    out = []
    for i in range(n):
        t, b = base_article(5000 + i, zh=i % 2 == 0, paragraphs=3)
        out.append(doc(i + 1, t, b, hours=i * 0.5, outlet=f"o{i % 7}"))
    return out


def test_cost_per_article_does_not_grow_with_the_archive() -> None:
    def cost(n: int) -> float:
        eng = Engine(Params(window_hours=24, dup_window_hours=24))
        docs = _stream(n)
        for i in range(0, n - 100, 100):
            eng.add_batch(docs[i:i + 100])
            eng.evict_before((docs[min(i + 99, n - 1)].published_at - timedelta(hours=48)).timestamp())
        before = (eng.counters.dup_candidates + eng.counters.story_candidates
                  + eng.counters.similarity_evals)
        eng.add_batch(docs[n - 100:])
        after = eng.counters.dup_candidates + eng.counters.story_candidates + eng.counters.similarity_evals
        return (after - before) / 100

    small, large = cost(300), cost(1500)
    assert large <= small * 1.5 + 5, (small, large)


def test_eviction_leaves_no_trace_in_the_shared_indexes() -> None:
    eng = Engine()
    for k in range(40):
        t, b = base_article(k, zh=k % 2 == 0, paragraphs=3)
        eng.add(doc(k, t, b, hours=k * 6.0, outlet=f"o-{k % 3}"))
    horizon = (T0 + timedelta(hours=20 * 6.0)).timestamp()
    gone = eng.evict_before(horizon)
    assert gone == 20
    live = set(eng.items)
    assert all(it.ts >= horizon for it in eng.items.values())
    for index in (eng._lsh, eng._term_index, eng._outlet_grams):
        held = {a for ids in index.values() for a in ids}
        assert held <= live, "evicted articles left in an index"
        assert all(index.values()), "empty lists are dropped"
    # What remains still works: a copy of a kept article folds into it.
    t, b = base_article(30, zh=True, paragraphs=3)
    assert eng.add(doc(99, t, b, hours=30 * 6.0 + 1, outlet="o-x")).duplicate_of == 30


# ---------------------------------------------------------------- long streams with eviction

_op = st.tuples(
    st.integers(0, 5),  # which text: few, so copies of one text recur across the stream
    st.sampled_from(["copy", "edit", "fresh"]),
    st.integers(0, 3),  # outlet
    st.floats(-20.0, 14.0),  # hours after the previous article (negative: a backfill)
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, min_size=5, max_size=70), batch=st.integers(1, 9))
def test_long_random_streams_keep_the_window_consistent(ops: list[tuple[int, str, int, float]],
                                                        batch: int) -> None:
    """Copies whose first copy has left the window, edits, backfills: after every batch the state
    is consistent, every article has a story, and the service's eviction rule never breaks it."""
    p = Params(window_hours=6, dup_window_hours=12)
    eng = Engine(p)
    reach = 12 * 3600.0
    docs: list[Doc] = []
    hours = 0.0
    for n, (text, kind, outlet, step) in enumerate(ops, start=1):
        hours += step
        title, body = base_article(text, zh=text % 2 == 0, paragraphs=2)
        if kind == "edit" and docs:
            prev = docs[(n * 7) % len(docs)]  # the same article again, now with another text
            docs.append(Doc(prev.id, title, body, prev.published_at, prev.outlet))
            continue
        if kind == "fresh":
            title, body = base_article(100 + n, zh=n % 2 == 0, paragraphs=2)
        docs.append(doc(n, title, body, hours=hours, outlet=f"o{outlet}"))
    for i in range(0, len(docs), batch):
        part = list({d.id: d for d in docs[i:i + batch]}.values())
        out = eng.add_batch(part)
        for a in out:
            assert a.story != 0 and a.story in eng.stories
            assert a.duplicate_of != a.id
        newest = max(it.ts for it in eng.items.values())
        earliest = min(d.published_at.timestamp() for d in part)
        eng.evict_before(min(newest - reach - 86400, earliest - reach))
        assert eng.check() == []
