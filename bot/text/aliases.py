"""Names Chinese news writes in Chinese and English news in Latin letters, and amounts written
with 万 / 亿 or million / billion: one spelling each, so a Chinese and an English report of one
event share them.

Only names that name one organisation, product or group (never countries or common nouns), and
only for story matching: titles and search keep what the article wrote.
"""

from __future__ import annotations

import re

# Chinese name -> the Latin token English reports use. Organisations, products and threat groups
# that tech and security news report on every week.
_NAMES_TABLE = """
# companies
微软=microsoft, 苹果公司=apple, 苹果=apple, 谷歌=google, 亚马逊=amazon, 脸书=facebook, 推特=twitter
英特尔=intel, 英伟达=nvidia, 高通=qualcomm, 博通=broadcom, 联发科=mediatek, 三星=samsung, 索尼=sony
思科=cisco, 甲骨文=oracle, 戴尔=dell, 惠普=hp, 慧与=hpe, 联想=lenovo, 华为=huawei, 中兴=zte, 小米=xiaomi
阿里巴巴=alibaba, 阿里云=alibaba, 腾讯=tencent, 百度=baidu, 字节跳动=bytedance, 抖音=tiktok, 京东=jd
特斯拉=tesla, 威睿=vmware, 红帽=redhat, 飞塔=fortinet, 派拓网络=paloalto, 瞻博网络=juniper, 瞻博=juniper
合勤=zyxel, 友讯=dlink, 普联=tplink, 网件=netgear, 卡巴斯基=kaspersky, 赛门铁克=symantec
趋势科技=trendmicro, 迈克菲=mcafee, 火眼=fireeye, 微步在线=threatbook, 奇安信=qianxin, 深信服=sangfor
启明星辰=venustech, 绿盟=nsfocus, 天融信=topsec, 安恒=dbappsecurity, 长亭=chaitin, 领英=linkedin
优步=uber, 贝宝=paypal, 维萨=visa, 万事达=mastercard, 摩托罗拉=motorola, 诺基亚=nokia, 爱立信=ericsson
西门子=siemens, 施耐德=schneider, 霍尼韦尔=honeywell, 罗克韦尔=rockwell, 波音=boeing, 空客=airbus
沃尔玛=walmart, 星巴克=starbucks, 任天堂=nintendo, 育碧=ubisoft, 动视暴雪=activision, 暴雪=blizzard
德勤=deloitte, 埃森哲=accenture, 毕马威=kpmg, 普华永道=pwc, 安永=ey, 开放人工智能=openai, 深度求索=deepseek
月之暗面=moonshot, 智谱=zhipu, 美团=meituan, 拼多多=pinduoduo, 网易=netease, 新浪=sina, 微博=weibo
蔚来=nio, 比亚迪=byd, 宁德时代=catl, 台积电=tsmc, 中芯国际=smic, 海康威视=hikvision, 大华=dahua, 电报=telegram
# products and platforms
视窗=windows, 安卓=android, 苹果手机=iphone, 火狐=firefox, 谷歌浏览器=chrome, 必应=bing, 油管=youtube
照片墙=instagram, 微信=wechat, 钉钉=dingtalk, 飞书=feishu, 企业微信=wecom, 支付宝=alipay
# agencies and bodies that news names as actors
欧洲刑警组织=europol, 国际刑警组织=interpol, 联邦调查局=fbi, 美国联邦调查局=fbi
国家安全局=nsa, 美国国家安全局=nsa
网络安全和基础设施安全局=cisa, 美国网络安全和基础设施安全局=cisa
美国证券交易委员会=sec, 证券交易委员会=sec, 联邦贸易委员会=ftc, 北约=nato
# threat groups (Microsoft's weather names and the best-known others)
盐台风=salt typhoon, 伏特台风=volt typhoon, 亚麻台风=flax typhoon, 丝绸台风=silk typhoon
午夜暴雪=midnight blizzard, 森林暴雪=forest blizzard, 海贝暴雪=seashell blizzard, 沙虫=sandworm
拉撒路=lazarus, 奇幻熊=fancy bear, 舒适熊=cozy bear
"""


def _names(table: str) -> dict[str, str]:
    """``中文=latin`` pairs, comma-separated, one group per line; ``#`` lines are headings."""
    pairs = (p.split("=", 1) for line in table.splitlines() if line and not line.startswith("#")
             for p in line.split(", "))
    return {zh.strip(): latin.strip() for zh, latin in pairs}


NAMES: dict[str, str] = _names(_NAMES_TABLE)

_NAMES_RE = re.compile("|".join(sorted(map(re.escape, NAMES), key=len, reverse=True)))

_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_DIGIT_RE = re.compile(r"\d")
_CN_AMOUNT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(万亿|亿|万)")
_EN_AMOUNT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(trillion|billion|million|thousand|bn|[mbk])\b", re.IGNORECASE)
_SCALE = {"万": 10**4, "亿": 10**8, "万亿": 10**12, "thousand": 10**3, "k": 10**3, "million": 10**6,
          "m": 10**6, "billion": 10**9, "bn": 10**9, "b": 10**9, "trillion": 10**12}


def _amount(m: re.Match[str]) -> str:
    value = float(m.group(1)) * _SCALE[m.group(2).lower()]
    return f" {round(value)} " if value >= 1000 else m.group(0)


def align(text: str) -> str:
    """``text`` with known Chinese names spelled as English reports spell them and amounts as
    plain integers (88.2万 -> 882000, $813.5M -> 813500000)."""
    if _DIGIT_RE.search(text):
        text = _CN_AMOUNT_RE.sub(_amount, text)
        text = _EN_AMOUNT_RE.sub(_amount, text)
    if not _CJK_RE.search(text):  # every name in the table is written in Chinese
        return text
    return _NAMES_RE.sub(lambda m: f" {NAMES[m.group(0)].title()} ", text)
