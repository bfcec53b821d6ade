"""Flat front matter that YAML refuses (unquoted ': ' in a title) is read line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sources.folder_parse import Reject, read_front_matter
from bot.sources.front_matter import flat_block
from tests.ingest_helpers import cli_json, write, write_config

CRAWLER = """---
title: Iconv, set the charset to RCE: Exploiting the glibc to hack the PHP engine
url: https://blog.example.com/iconv-rce
source: Example Security Blog
date: 2024-11-23
fetch_date: 2025-10-06T19:26:13.659868
---

# Iconv, set the charset to RCE

Body text of our own.
"""


def test_flat_front_matter_with_an_unquoted_colon_is_read() -> None:
    meta, body, warnings = read_front_matter(CRAWLER)
    assert meta["title"] == "Iconv, set the charset to RCE: Exploiting the glibc to hack the PHP engine"
    assert meta["url"] == "https://blog.example.com/iconv-rce"
    assert meta["source"] == "Example Security Blog"
    assert meta["date"] == "2024-11-23"
    assert "Body text of our own." in body
    assert warnings == ["front matter read line by line: unquoted ':' in a value"]


@pytest.mark.parametrize(("line", "value"), [
    ("title: [Update] Patch now: three bugs", "[Update] Patch now: three bugs"),
    ("title: 'Alarming' bugs lay low: for years", "'Alarming' bugs lay low: for years"),
    ('title: "Quoted: all of it"', "Quoted: all of it"),
    ("title: 'It''s quoted: too'", "It's quoted: too"),
    ("title: &#8220;Entities&#8221;: kept as written", "&#8220;Entities&#8221;: kept as written"),
    ("title: @everyone: read this", "@everyone: read this"),
    ("title: |0day| a title: with bars", "|0day| a title: with bars"),
])
def test_values_are_the_rest_of_the_line(line: str, value: str) -> None:
    meta, _, warnings = read_front_matter(f"---\n{line}\nother: x: y\n---\nbody\n")
    assert meta["title"] == value and meta["other"] == "x: y"
    assert warnings and warnings[0].startswith("front matter read line by line")


def test_a_whole_flow_list_stays_a_list() -> None:
    meta, _, _ = read_front_matter("---\ntitle: A: B\ntags: [one, two]\nempty:\n---\nbody\n")
    assert meta == {"title": "A: B", "tags": ["one", "two"], "empty": None}


@pytest.mark.parametrize("block", [
    "title: A: B\nmeta:\n  nested: x: y",          # indented: nesting
    "title: A: B\ntags:\n- one",                   # a list item
    'title: "open quote: A\ndate: 2024-11-23',    # a quote YAML would continue on the next line
    "title: A: B\nsummary: [open, list",           # a bracket left open
    "title: A: B\nsummary: |\n  block text",       # a block scalar
    "title: A: B\ntitle: again: twice",            # a key given twice
    "title: A: B\n# a comment: here",              # not a key line
    "title: A: B\nurl:https://example.com/x",      # not YAML's 'key: value' either
])
def test_nested_or_ambiguous_blocks_are_still_rejected_with_their_line(block: str) -> None:
    assert flat_block(block) is None
    with pytest.raises(Reject, match=r"invalid YAML in front matter at line \d"):
        read_front_matter(f"---\n{block}\n---\nbody\n")


def test_valid_yaml_is_not_read_line_by_line() -> None:
    meta, _, warnings = read_front_matter("---\ntitle: 'A: B'\ndate: 2024-11-23\n---\nbody\n")
    assert meta["title"] == "A: B" and str(meta["date"]) == "2024-11-23" and warnings == []


def test_ingest_stores_the_crawler_file_with_a_warning(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "articles"
    write(folder, "crawler.md", CRAWLER)
    write(folder, "nested.md", "---\ntitle: A: B\nmeta:\n  x: y: z\n---\nbody\n")
    cfg = write_config(tmp_path / "config.yaml", folder, db_url)
    out = cli_json("--config", str(cfg), "ingest")
    assert out["new"] == 1
    [rej] = out["rejections"]
    assert rej["where"].endswith("nested.md") and "invalid YAML in front matter at line" in rej["reason"]
    warned = {(Path(w["where"]).name, w["reason"]) for w in out["warnings"]}
    assert ("crawler.md", "front matter read line by line: unquoted ':' in a value") in warned
    [art] = cli_json("--config", str(cfg), "articles")
    assert art["title"].startswith("Iconv, set the charset to RCE: Exploiting")
    assert art["outlet"] == "Example Security Blog"
    assert art["published_at"] == "2024-11-22T16:00:00Z"  # a bare date, in the source's zone
