"""End to end through the real ``digestbot`` CLI: ingest, articles, re-runs, edits."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import frontmatter

from bot.text.clean import closing_link
from tests.ingest_helpers import BROKEN, ODD, article_text, cli, cli_json, write, write_config


def _by_path(arts: list[dict]) -> dict[str, dict]:
    return {a["path"]: a for a in arts}


def test_seeds_plus_broken_files(tmp_path: Path, db_url: str, shared_dir: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    seeds = sorted((shared_dir / "seeds").glob("*.md"))
    assert len(seeds) == 5
    for s in seeds:
        shutil.copy2(s, folder / s.name)
    for name, data in {**BROKEN, **ODD}.items():
        write(folder, name, data)
    write(folder, "oversize.md", article_text("Big", body="x" * 300_000))
    cfg = write_config(tmp_path / "config.yaml", folder, db_url, max_file_bytes=200_000)

    first = cli_json("--config", str(cfg), "ingest")
    assert first["new"] == 5 + len(ODD)
    rejected = {Path(r["where"]).name: r["reason"] for r in first["rejections"]}
    assert set(rejected) == {*BROKEN, "oversize.md"}
    assert "line 2" in rejected["broken_yaml.md"] or "line 3" in rejected["broken_yaml.md"]
    assert "front matter" in rejected["no_front_matter.md"]
    assert "title" in rejected["no_title.md"]
    assert "binary" in rejected["binary.md"]
    assert "empty" in rejected["empty.md"]
    assert "max_file_bytes" in rejected["oversize.md"]
    assert "not closed" in rejected["not_closed.md"]
    assert first["rejected"] == len(rejected)
    warned = {Path(w["where"]).name for w in first["warnings"]}
    assert {"bad_date.md", "gbk.md", "gb18030.md", "bom.md"} <= warned
    assert first["sources"]["local"]["new"] == first["new"]

    arts = _by_path(cli_json("--config", str(cfg), "articles"))
    for s in seeds:
        post = frontmatter.load(s)
        a = arts[s.name]
        naive = datetime.strptime(post["date"], "%Y-%m-%d %H:%M:%S")
        utc = naive.replace(tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(ZoneInfo("UTC"))
        assert a["published_at"] == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert a["outlet"] == post["categories"][0]
        assert a["url"] == closing_link(post.content)[1]
        assert a["title"] == post["title"]
        assert a["lang"] == "zh-CN"
        assert a["source"] == "local"
    assert arts["000_8239285a7b9f801b.md"]["published_at"] == "2025-02-11T16:25:43Z"
    assert arts["gbk.md"]["title"] == "GBK 编码的文章" and arts["gbk.md"]["outlet"] == "新浪"
    assert arts["gb18030.md"]["title"] == "GB18030 编码 𠀀"
    assert arts["bom.md"]["title"] == "BOM article"

    second = cli_json("--config", str(cfg), "ingest")
    assert second["new"] == 0 and second["updated"] == 0
    assert second["unchanged"] == 5 + len(ODD)
    # Still-broken files are still reported (read again: the settings may have changed).
    assert {Path(r["where"]).name for r in second["rejections"]} == set(rejected)
    assert len(cli_json("--config", str(cfg), "articles")) == 5 + len(ODD)


def _own_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    write(folder, "en/one.md", article_text("Apple and Alibaba team up", url="https://ex.com/one?utm_source=x"))
    write(folder, "zh/two.md", article_text("苹果与阿里巴巴合作", outlet="iyiou", url="https://ex.com/two",
                                            date="2025-02-12 08:00:00",
                                            body="苹果公司已与阿里巴巴集团达成合作。"))
    write(folder, "three.md", article_text("Third", url=None, body="No closing link.\n"))
    return folder


def test_own_articles_text_output_and_rerun(tmp_path: Path, db_url: str) -> None:
    folder = _own_folder(tmp_path)
    cfg = write_config(tmp_path / "config.yaml", folder, db_url)
    res = cli("--config", str(cfg), "ingest")
    assert res.returncode == 0, res.stderr
    assert "3 new, 0 updated, 0 unchanged, 0 rejected" in res.stdout

    arts = _by_path(cli_json("--config", str(cfg), "articles"))
    assert set(arts) == {"en/one.md", "zh/two.md", "three.md"}
    one = arts["en/one.md"]
    assert one["external_id"] == "https://ex.com/one"  # canonical: tracking parameter gone
    assert one["url"] == "https://ex.com/one?utm_source=x"
    assert arts["zh/two.md"]["published_at"] == "2025-02-12T00:00:00Z"
    assert arts["zh/two.md"]["outlet"] == "iyiou"
    assert arts["three.md"]["external_id"] == "three.md"  # no guid, no URL: the path
    assert arts["three.md"]["url"] is None

    listing = cli("--config", str(cfg), "articles")
    assert listing.returncode == 0 and "3 articles" in listing.stdout
    assert "苹果与阿里巴巴合作" in listing.stdout

    again = cli_json("--config", str(cfg), "ingest")
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 3)

    # An edit updates the same article; a new file is new; a removed file keeps its article.
    write(folder, "en/one.md", article_text("Apple and Alibaba team up (updated)",
                                            url="https://ex.com/one?utm_source=x"), age=100)
    write(folder, "four.md", article_text("Fourth", url="https://ex.com/four"))
    (folder / "three.md").unlink()
    third = cli_json("--config", str(cfg), "ingest")
    assert (third["new"], third["updated"], third["unchanged"]) == (1, 1, 1)
    after = _by_path(cli_json("--config", str(cfg), "articles"))
    assert after["en/one.md"]["id"] == one["id"]
    assert after["en/one.md"]["title"] == "Apple and Alibaba team up (updated)"
    assert "three.md" in after and len(after) == 4


def test_ingest_only_one_source_and_unknown_source(tmp_path: Path, db_url: str) -> None:
    folder = _own_folder(tmp_path)
    cfg = write_config(tmp_path / "config.yaml", folder, db_url)
    # --config after the command works as well as before it.
    out = cli_json("ingest", "--source", "local", "--config", str(cfg))
    assert out["new"] == 3
    res = cli("--config", str(cfg), "ingest", "--source", "nope")
    assert res.returncode == 2 and "unknown source nope" in res.stderr


def test_missing_folder_is_reported_not_fatal(tmp_path: Path, db_url: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", tmp_path / "nowhere", db_url)
    out = cli_json("--config", str(cfg), "ingest")
    assert out["new"] == 0 and out["rejected"] == 1
    assert "does not exist" in out["rejections"][0]["reason"]
    assert out["sources"]["local"]["error"]


def test_relative_folder_resolves_against_the_config(tmp_path: Path, db_url: str) -> None:
    _own_folder(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f'database: {{url: "{db_url}"}}\n'
                   "sources:\n  - {name: local, type: folder, path: articles}\n", encoding="utf-8")
    out = cli_json("--config", str(cfg), "ingest", cwd=Path("/"))
    assert out["new"] == 3
