"""Property: whatever a file holds, the folder source neither raises nor loses it.

Every file becomes exactly one article or one rejection, and every article is storable.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import load_settings
from bot.sources.base import SourceState
from bot.sources.folder import FolderSource
from bot.store.articles import validate

KEYS = ["title", "date", "summary", "categories", "lang", "tags", "url", "link", "outlet", "source", "guid"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
    st.text(max_size=40), st.datetimes(timezones=st.none() | st.just(UTC)), st.dates(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=6)
front_matter = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values, max_size=8)
bodies = st.text(max_size=300) | st.sampled_from(["", "# Heading\n\ntext", "x\n\n[o](https://e.com/a)\n"])


def _run(files: dict[str, bytes]) -> tuple[int, int, list]:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        past = time.time() - 3600
        for name, data in files.items():
            p = root / name
            p.write_bytes(data)
            os.utime(p, (past, past))
        cfg = load_settings(
            text=f'sources:\n  - {{name: p, type: folder, path: "{root}", max_file_bytes: 5000}}\n')
        res = asyncio.run(FolderSource(cfg.sources[0], cfg).fetch(SourceState()))  # type: ignore[arg-type]
        return len(res.articles), len(res.rejections), res.articles


def _check(files: dict[str, bytes]) -> None:
    n_art, n_rej, arts = _run(files)
    assert n_art + n_rej == len(files)
    for a in arts:
        validate(a)  # raises if not storable
        assert a.title.strip() and a.external_id
        assert a.published_at.tzinfo is not None and a.published_at.utcoffset().total_seconds() == 0
        assert isinstance(a.published_at, datetime)


@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(front_matter, bodies), min_size=1, max_size=4))
def test_arbitrary_front_matter_never_raises(posts: list[tuple[dict, str]]) -> None:
    files = {}
    for i, (meta, body) in enumerate(posts):
        try:
            fm = yaml.safe_dump(meta, allow_unicode=True)
        except yaml.YAMLError:
            fm = "title: x\n"
        files[f"{i}.md"] = f"---\n{fm}---\n{body}".encode("utf-8", "surrogatepass")
    _check(files)


@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=400) | st.text(max_size=200).map(lambda t: ("---\n" + t).encode(
    "utf-8", "surrogatepass")), min_size=1, max_size=4))
def test_arbitrary_bytes_never_raise(blobs: list[bytes]) -> None:
    _check({f"{i}.md": b for i, b in enumerate(blobs)})


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=80))
def test_any_title_is_kept_or_refused_with_a_reason(title: str) -> None:
    data = ("---\ntitle: " + yaml.safe_dump(title, allow_unicode=True).split("\n...")[0].strip()
            + '\ndate: "2025-02-12 00:00:00"\n---\nbody\n')
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "a.md"
        p.write_bytes(data.encode("utf-8", "surrogatepass"))
        os.utime(p, (time.time() - 3600,) * 2)
        cfg = load_settings(text=f'sources:\n  - {{name: p, type: folder, path: "{d}"}}\n')
        res = asyncio.run(FolderSource(cfg.sources[0], cfg).fetch(SourceState()))  # type: ignore[arg-type]
    if res.articles:
        assert res.articles[0].title == " ".join(title.split()) or not title.strip()
    else:
        assert res.rejections and res.rejections[0].reason


simple_text = st.text(st.characters(blacklist_characters='"\\\r\n\t'), max_size=30)
simple_values = st.one_of(
    simple_text, st.booleans(), st.none(), st.integers(-10**6, 10**6),
    st.lists(simple_text | st.booleans() | st.integers(0, 99), max_size=3),
)
simple_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


def _render(meta: dict) -> str:
    def scalar(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "null"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v) + '"'

    lines = [""]
    for k, v in meta.items():
        if isinstance(v, list):
            lines.append(f"{k}:" if v else f"{k}: []")
            lines.extend(f"  - {scalar(x)}" for x in v)
        else:
            lines.append(f"{k}: {scalar(v)}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(simple_keys, simple_values, max_size=8))
def test_flat_front_matter_reads_exactly_as_yaml(meta: dict) -> None:
    from bot.sources.folder_parse import simple_yaml

    fm = _render(meta)
    fast = simple_yaml(fm)
    try:
        expected = yaml.safe_load(fm)
    except yaml.YAMLError:
        assert fast is None  # never accept what YAML refuses
        return
    if fast is not None:
        assert fast == (expected or {})


@settings(max_examples=150, deadline=None)
@given(st.text(st.sampled_from(list('ab:- "\'\n#[]{}01tTn~\\\x85\u00e9中')), max_size=60))
def test_flat_reader_never_disagrees_with_yaml(fm: str) -> None:
    from bot.sources.folder_parse import simple_yaml

    fast = simple_yaml(fm)
    if fast is None:
        return
    expected = yaml.safe_load(fm)  # must not raise when the fast path accepted it
    assert fast == (expected or {})
