"""Summaries and width-based cutting."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text.summary import cjk_punctuation, is_real_summary, shorten, split_sentences, summarize
from bot.text.width import cut_utf16, cut_width, display_width, utf16_len

BODY = """![](https://img.example/a.jpeg)

文 | kiki

快讯3月10日消息，综合多方消息，**苹果公司与阿里巴巴集团宣布合作，两家公司将为国行iPhone用户开发人工智能功能。**

分析人士认为，这项合作有望帮助苹果提振在华销量，并让新款iPhone更有竞争力。

### **苹果AI中国化之路**

[iyiou](https://news.example.com/analysis/2025021201)
"""


def test_width() -> None:
    assert display_width("苹果") == 4
    assert display_width("iPhone 16") == 9
    assert display_width("😀") == 2
    assert display_width("e\u0301") == 1  # combining accent takes no column
    assert cut_width("苹果公司", 5) == "苹果"
    assert utf16_len("😀a") == 3
    assert cut_utf16("a😀b", 2) == "a"  # never half a surrogate pair


def test_stub_summary_falls_back_to_body_lead() -> None:
    stub = "快讯3月10日消息，综合多方消息，苹果公司与阿里巴巴集团宣布合作，两家公司将为国行iPho..."
    assert not is_real_summary(stub, "苹果携手阿里巴巴")
    s = summarize("苹果携手阿里巴巴", stub, BODY, 120)
    assert s == (
        "快讯3月10日消息，综合多方消息，苹果公司与阿里巴巴集团宣布合作，"
        "两家公司将为国行iPhone用户开发人工智能功能。"
    )


def test_two_sentences_when_they_fit() -> None:
    s = summarize("苹果携手阿里巴巴", "", BODY, 400)
    assert s.endswith("并让新款iPhone更有竞争力。") and s.count("。") == 2
    assert "kiki" not in s and "###" not in s and "**" not in s


def test_real_summary_is_used() -> None:
    title = "Apple patches zero-day"
    summary = "Apple fixed a flaw that attackers used against specific people."
    assert is_real_summary(summary, title)
    assert summarize(title, summary, "Something else entirely. Really.", 120) == summary
    assert not is_real_summary(title, title)
    assert not is_real_summary(title + " ...", title)
    assert not is_real_summary("", title)


def test_long_sentence_cut_at_clause_boundary() -> None:
    s = summarize("t", "", BODY, 60)
    assert display_width(s) <= 60
    assert s == "快讯3月10日消息，综合多方消息…"


def test_english_cut_never_mid_word() -> None:
    text = (
        "Apple and Alibaba will work together on AI features for iPhone users in China, according "
        "to reports from several outlets on Tuesday."
    )
    out = shorten(text, 50)
    assert out == "Apple and Alibaba will work together on AI…"
    out = shorten(text, 100)
    assert out.endswith("China…")


def test_sentences() -> None:
    assert split_sentences("The U.S. Department said so. iOS 18.5 ships. 好的。“是吗？”他问。") == [
        "The U.S. Department said so.",
        "iOS 18.5 ships.",
        "好的。",
        "“是吗？”",
        "他问。",
    ]


def test_cjk_punctuation_restored_after_nfkc() -> None:
    assert (
        cjk_punctuation("消息,据多家媒体(记者 黄心怡)报道:好!") == "消息，据多家媒体（记者 黄心怡）报道：好！"
    )
    assert cjk_punctuation("iOS 18.5, Apple (AAPL)") == "iOS 18.5, Apple (AAPL)"


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=300, deadline=None)
@given(_text, st.integers(min_value=4, max_value=200))
def test_shorten_fits_and_is_a_prefix(text: str, width: int) -> None:
    out = shorten(text, width)
    assert display_width(out) <= width
    body = out.removesuffix("…")
    assert text.strip().startswith(body)
    if display_width(text.strip()) <= width:
        assert out == text.strip()


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=80),
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "**粗体**",
                "![img](http://x/y.png)",
                "### 标题",
                "[链接](http://a)",
                "正文内容很长很长很长很长很长很长很长很长很长。",
                "A sentence in English that is long enough to count as prose here.",
                "\n\n",
                "*",
                "#",
            ]
        ),
        max_size=12,
    ),
    st.integers(min_value=20, max_value=300),
)
def test_summary_never_leaves_markdown_debris(title: str, summary: str, parts: list[str], width: int) -> None:
    out = summarize(title, summary, "".join(parts), width)
    assert display_width(out) <= width
    if "**" not in summary and "#" not in summary and "](" not in summary:
        assert "**" not in out and "![" not in out and "###" not in out and "](" not in out
