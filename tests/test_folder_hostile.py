"""A folder written by someone hostile (or careless): YAML bombs, symlinks, odd names and bytes.

Every test here failed on the code before issue 16: an alias bomb ate gigabytes, symlink loops
multiplied files, links out of the folder were read, one bad byte garbled a file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sources.base import SourceState
from bot.sources.folder import FolderSource, ParseParams, parse_file
from bot.sources.folder_parse import build_article, decode, read_front_matter
from tests.ingest_helpers import article_text, cli, cli_json, write, write_config

ROOT = Path(__file__).resolve().parent.parent
SH = ZoneInfo("Asia/Shanghai")


def _source(folder: Path) -> FolderSource:
    from bot.config import load_settings

    settings = load_settings(text=f'sources:\n  - {{name: f, type: folder, path: "{folder}"}}\n')
    return FolderSource(settings.sources[0], settings)  # type: ignore[arg-type]


def _params(folder: Path) -> ParseParams:
    return ParseParams(root=str(folder), source="f", timezone="Asia/Shanghai", max_file_bytes=2_000_000,
                       settle_seconds=0, outlet=None, now=time.time())


def billion_laughs(depth: int = 9, width: int = 9) -> str:
    """``a: &a [x × 9]``, ``b: &b [*a × 9]`` … and a date that names the last: 9**9 strings."""
    names = "abcdefghijklmnop"
    lines = ["---", 'title: "A harmless title"',
             f"{names[0]}: &{names[0]} [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, depth):
        lines.append(f"{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * width) + "]")
    lines += [f"date: *{names[depth - 1]}", "---", "", "Body."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- 1. front matter that expands


def test_alias_bomb_is_rejected_fast_and_small(tmp_path: Path) -> None:
    """In a fresh process (so its peak memory is its own): under a second, under 200 MB."""
    write(tmp_path, "bomb.md", billion_laughs())
    script = textwrap.dedent(f"""
        import json, resource, time
        from bot.sources.folder import ParseParams, parse_file
        params = ParseParams(root={str(tmp_path)!r}, source="f", timezone="UTC", max_file_bytes=2_000_000,
                             settle_seconds=0, outlet=None, now=time.time())
        t = time.perf_counter()
        out = parse_file(params, "bomb.md", None)
        # VmHWM: this program's own peak (ru_maxrss would include the parent's, from before exec).
        try:
            with open("/proc/self/status") as fh:
                peak = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))
        except OSError:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"seconds": time.perf_counter() - t, "reason": out.reason,
                          "article": out.article is not None, "rss_mb": peak / 1024}}))
    """)
    import json

    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert not out["article"]
    assert "alias" in out["reason"] and "line" in out["reason"]
    assert out["seconds"] < 1.0, out
    assert out["rss_mb"] < 200, out


def test_alias_bomb_through_ingest_is_one_rejection(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "articles"
    write(folder, "bomb.md", billion_laughs())
    write(folder, "ok.md", article_text("Fine"))
    cfg = write_config(tmp_path / "config.yaml", folder, db_url)
    t = time.monotonic()
    out = cli_json("--config", str(cfg), "ingest")
    assert time.monotonic() - t < 30  # the whole CLI, start-up included; the parse itself is < 1 s
    assert out["new"] == 1
    [rej] = out["rejections"]
    assert rej["where"].endswith("bomb.md") and "alias" in rej["reason"]


def test_no_value_is_stringified_whole() -> None:
    """Values reach warnings through a bounded formatter, never str() of the whole value."""
    huge = [["x" * 1000] * 1000] * 1000  # a billion characters if str()'d
    meta = {"title": "T", "date": huge, "categories": huge, "tags": huge, "summary": huge}
    t = time.perf_counter()
    _, warnings = build_article(meta, "Body.\n", rel="a.md", source="f", tz=SH, mtime=1.7e9)
    assert time.perf_counter() - t < 1.0
    [w] = [w for w in warnings if "unparseable" in w]
    assert len(w) < 200


# Front matter of any shape YAML can write, plus raw text around it.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=40))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=6)
                       | st.dictionaries(st.text(max_size=10), inner, max_size=6), max_leaves=40)


def _yaml_of(value: object) -> str:
    import yaml

    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.dictionaries(st.sampled_from(["title", "date", "categories", "tags", "summary", "outlet", "lang",
                                     "url", "guid", "x"]), _values, max_size=8).map(_yaml_of),
    st.text(max_size=400),
    st.lists(st.sampled_from(["a: &a [x, x, x]", "b: &b [*a, *a, *a]", "title: *b", "date: !!omap [a: 1]",
                              "tags: !!set {a, b}", "title: A: B", "  - item", "x: |", "  text",
                              "summary: [1, [2, [3", "key: 'q''s'", 'u: "\\u263a"', "? [a]\n: b",
                              "date: 2150-01-01", "<<: *a", "t: !!binary aGVsbG8="]),
             max_size=12).map("\n".join),
))
def test_any_front_matter_is_read_or_rejected_quickly(tmp_path_factory: pytest.TempPathFactory,
                                                      block: str) -> None:
    import resource

    text = f"---\n{block}\n---\n\n# Heading\n\nBody text.\n"
    folder = tmp_path_factory.mktemp("fm")
    (folder / "a.md").write_text(text, encoding="utf-8", errors="surrogatepass")
    os.utime(folder / "a.md", (1.7e9, 1.7e9))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    out = parse_file(_params(folder), "a.md", None)
    assert time.perf_counter() - t < 1.0
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200
    assert (out.article is None) == (out.reason is not None)
    if out.article is not None:
        a = out.article
        assert isinstance(a.title, str) and isinstance(a.outlet, str) and len(a.outlet) <= 200
        assert all(isinstance(c, str) for c in a.categories + a.tags)


def test_front_matter_over_the_cap_is_rejected() -> None:
    from bot.sources.folder_parse import Reject
    from bot.sources.front_matter import MAX_CHARS

    block = "title: x\n" + "".join(f"k{i}: [a, b]\n" for i in range(MAX_CHARS // 10))
    with pytest.raises(Reject, match="over"):
        read_front_matter(f"---\n{block}---\nbody\n")


def test_omap_or_set_never_names_the_outlet() -> None:
    meta, _, _ = read_front_matter("---\ntitle: T\ncategories: !!omap [a: 1]\nsource: !!set {x}\n---\nb\n")
    article, _ = build_article(meta, "Body.\n", rel="a.md", source="f", tz=SH, mtime=1.7e9)
    assert article.outlet == "f" and article.categories == []
    assert "(" not in article.outlet
    meta, _, _ = read_front_matter("---\ntitle: T\ncategories: [[a, 1], 7, Real outlet]\n---\nb\n")
    article, _ = build_article(meta, "Body.\n", rel="a.md", source="f", tz=SH, mtime=1.7e9)
    assert article.outlet == "Real outlet" and article.categories == ["Real outlet"]


# ---------------------------------------------------------------- 2/3. symlinks


def test_two_symlink_loops_finish_fast_each_reported_once(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    write(folder, "x.md", article_text("Only one", url="https://example.com/x"))
    write(folder, "sub/y.md", article_text("Second", url="https://example.com/y"))
    (folder / "self").symlink_to(".")
    (folder / "sub" / "up").symlink_to("..")
    (folder / "a.md").symlink_to("b.md")
    (folder / "b.md").symlink_to("a.md")
    t = time.monotonic()
    res = _fetch(folder)
    assert time.monotonic() - t < 1.0
    assert sorted(a.path for a in res.articles) == ["sub/y.md", "x.md"]
    reasons = {Path(r.where).relative_to(folder).as_posix(): r.reason for r in res.rejections}
    assert set(reasons) == {"self", "sub/up", "a.md", "b.md"}
    assert all("symlink loop" in r for r in reasons.values())


def test_links_out_of_the_folder_are_rejected_and_never_opened(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    write(outside, "secret.md", article_text("Not yours", url="https://example.com/secret"))
    folder = tmp_path / "articles"
    write(folder, "ok.md", article_text("Ours", url="https://example.com/ok"))
    (folder / "leak.md").symlink_to(outside / "secret.md")
    (folder / "dir").symlink_to(outside)
    (folder / "passwd.md").symlink_to("/etc/passwd")
    (folder / "inner.md").symlink_to("ok.md")  # inside: read, under its own name

    import builtins

    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *a, **kw):  # type: ignore[no-untyped-def]
        opened.append(os.path.realpath(str(file)))
        return real_open(file, *a, **kw)

    def spy_os_open(path, *a, **kw):  # type: ignore[no-untyped-def]
        opened.append(os.path.realpath(str(path)))
        return real_os_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    res = _fetch(folder)
    monkeypatch.undo()
    assert sorted(a.path for a in res.articles) == ["inner.md", "ok.md"]
    reasons = {Path(r.where).name: r.reason for r in res.rejections}
    assert set(reasons) == {"leak.md", "dir", "passwd.md"}
    assert all(r.startswith("symlink leaves the folder") for r in reasons.values())
    assert not [p for p in opened if not p.startswith(str(folder.resolve()))], opened


def test_symlink_rejections_through_ingest_once_per_pass(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "articles"
    write(folder, "ok.md", article_text("Ours"))
    (folder / "loop").symlink_to(".")
    (folder / "out.md").symlink_to("/etc/hostname")
    cfg = write_config(tmp_path / "config.yaml", folder, db_url)
    for _ in range(2):
        out = cli_json("--config", str(cfg), "ingest")
        names = sorted(Path(r["where"]).name for r in out["rejections"])
        assert names == ["loop", "out.md"]
    assert [a["path"] for a in cli_json("--config", str(cfg), "articles")] == ["ok.md"]


def _fetch(folder: Path):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(_source(folder).fetch(SourceState()))


# ---------------------------------------------------------------- 8. decoding


def test_mixed_encoding_keeps_its_utf8_title(tmp_path: Path) -> None:
    head = '---\ntitle: "混合编码的标题 mixed"\ndate: "2025-02-12 08:00:00"\n---\n\n'.encode()
    body = "这是一段用 GBK 编码的正文，讲的是电池技术的进展。".encode("gbk")
    write(tmp_path, "mixed.md", head + body)
    out = parse_file(_params(tmp_path), "mixed.md", None)
    assert out.article is not None, out.reason
    assert out.article.title == "混合编码的标题 mixed"
    assert "电池技术" in out.article.body
    [note] = [w for w in out.warnings if "decoded" in w]
    assert "UTF-8" in note and "GB18030" in note


def test_one_bad_byte_keeps_utf8() -> None:
    text = '---\ntitle: "一篇 UTF-8 的文章"\n---\n\n' + "正文内容，讲的是人工智能。" * 20
    data = bytearray(text.encode())
    i = data.index("人".encode())
    data[i] = 0xFF  # one byte of one character broken
    decoded, note = decode(bytes(data))
    assert "一篇 UTF-8 的文章" in decoded and decoded.count("\ufffd") >= 1
    assert note is not None and "UTF-8" in note and "replaced" in note
    assert "cp1125" not in note


def test_gbk_file_still_decodes_as_gb18030() -> None:
    data = '---\ntitle: "全文 GBK"\n---\n正文。'.encode("gbk")
    decoded, note = decode(data)
    assert '"全文 GBK"' in decoded and note == "decoded as GB18030 (not UTF-8)"


# ---------------------------------------------------------------- 9. dates and names


def test_folder_date_far_in_the_future_is_clamped_like_feeds() -> None:
    mtime = datetime(2025, 2, 12, tzinfo=UTC).timestamp()
    now = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
    article, warnings = build_article({"title": "T", "date": "2150-01-01 08:00:00"}, "Body.\n", rel="a.md",
                                      source="f", tz=SH, mtime=mtime, now=now)
    assert article.published_at == datetime(2025, 2, 12, tzinfo=UTC)
    assert any("in the future" in w for w in warnings)
    # Within the slack (a day) a date stays as written.
    article, _ = build_article({"title": "T", "date": "2025-03-01 20:00:00"}, "Body.\n", rel="a.md",
                               source="f", tz=SH, mtime=mtime, now=now)
    assert article.published_at == datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_file_names_with_newlines_do_not_forge_report_lines(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "articles"
    write(folder, "evil\nrejected /etc/shadow: forged.md", b"no front matter\n")
    write(folder, "ok\x1b[2J.md", article_text("Ok"))
    cfg = write_config(tmp_path / "config.yaml", folder, db_url)
    res = cli("--config", str(cfg), "-v", "ingest")
    assert res.returncode == 0, res.stderr
    assert "forged.md" in res.stdout
    for line in (res.stdout + res.stderr).splitlines():
        assert not line.startswith("rejected /etc/shadow"), line
    assert "\x1b" not in res.stdout + res.stderr
    assert "evil\\nrejected" in res.stdout and "evil\\nrejected" in res.stderr
