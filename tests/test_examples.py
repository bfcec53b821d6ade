"""The bundled example corpus parses and matches what examples/README.md says about it.

Only python-frontmatter is needed here, so this holds whatever state the pipeline is in.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import frontmatter
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "articles"
FILES = sorted(EXAMPLES.glob("*.md"))
CLOSING = re.compile(r"^\[([^\]]+)\]\((https?://[^)\s]+)\)$")
# The seeds' front-matter keys, in their order.
SEED_KEYS = ["title", "date", "summary", "categories", "lang", "translations", "tags", "menu", "thumbnail",
             "lead", "comments", "authorbox", "pager", "toc", "mathjax", "sidebar", "widgets"]


def _last_line(body: str) -> str:
    return [ln for ln in body.splitlines() if ln.strip()][-1].strip()


def test_corpus_size_and_languages() -> None:
    assert 18 <= len(FILES) <= 24
    langs = [frontmatter.load(f)["lang"][0] for f in FILES]
    assert langs.count("zh-CN") >= 8 and langs.count("en") >= 6


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_example_parses(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    assert raw.startswith("---\n")
    post = frontmatter.loads(raw)
    assert list(post.metadata) == SEED_KEYS
    assert isinstance(post["title"], str) and post["title"].strip()
    # Naive local time, exactly the seeds' layout.
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", post["date"])
    when = datetime.strptime(post["date"], "%Y-%m-%d %H:%M:%S")
    assert datetime(2025, 3, 10) <= when <= datetime(2025, 3, 13)
    assert post["summary"].endswith("...")
    assert post["lang"] in (["zh-CN"], ["en"]) and post["translations"] == post["lang"]
    outlet = post["categories"]
    assert len(outlet) == 1 and post["tags"] == outlet
    m = CLOSING.match(_last_line(post.content))
    assert m, f"{path.name}: last line is not [outlet](url)"
    assert m.group(1) == outlet[0]
    assert re.match(r"https://[a-z0-9.-]+\.example\.com/", m.group(2))
    # Everything the body links to or shows is on an example domain.
    for url in re.findall(r"\]\((https?://[^)\s]+)\)", post.content):
        assert ".example.com/" in url, url


def test_urls_are_unique() -> None:
    urls = [CLOSING.match(_last_line(frontmatter.load(f).content)).group(2) for f in FILES]  # type: ignore[union-attr]
    assert len(set(urls)) == len(urls)


def test_readme_structure_holds() -> None:
    """The groups examples/README.md promises: multi-outlet stories, a repost, a round-up."""
    posts = {f.name[:2]: frontmatter.load(f) for f in FILES}
    battery = [posts[n] for n in ("01", "02", "03", "04", "05")]
    outage = [posts[n] for n in ("06", "07", "08")]
    assert len({p["categories"][0] for p in battery}) == 5
    assert len({p["categories"][0] for p in outage}) == 3
    assert all(p["lang"] == ["zh-CN"] for p in battery) and all(p["lang"] == ["en"] for p in outage)
    assert all("磐石" in p.content for p in battery)
    assert all("east-2" in p.content for p in outage)
    # 05 is 02 with a header and a footer: 02's body (minus its closing line) sits inside it whole.
    original = "\n".join(posts["02"].content.strip().splitlines()[:-1]).strip()
    assert original in posts["05"].content and "转载" in posts["05"].content
    assert len(posts["05"].content) > len(posts["02"].content)
    # The round-up names both multi-outlet stories; 10 is the same company, another event.
    assert "科技早报" in posts["09"]["title"]
    assert "磐石" in posts["09"].content and "Fabrikam" in posts["09"].content
    assert "青岚" in posts["10"].content and "磐石" not in posts["10"].content
