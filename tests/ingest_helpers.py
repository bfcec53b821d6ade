"""Helpers for the ingest tests: our own fixture articles, broken files, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def article_text(title: str | None = "Test title", *, date: str | None = "2025-02-12 00:25:43",
                 outlet: str = "example", url: str | None = "https://example.com/a/1",
                 body: str = "Some body text with a [link](https://example.com/ref).",
                 extra: str = "") -> str:
    """An article in the seeds' format (front matter + body + closing [outlet](url) line)."""
    fm = ["---"]
    if title is not None:
        fm.append(f"title: {json.dumps(title, ensure_ascii=False)}")
    if date is not None:
        fm.append(f'date: "{date}"')
    fm += ['summary: "A summary"', "categories:", f'  - "{outlet}"', "lang:", '  - "en"', "tags:",
           f'  - "{outlet}"']
    if extra:
        fm.append(extra)
    fm.append("---")
    closing = f"\n\n[{outlet}]({url})\n" if url else "\n"
    return "\n".join(fm) + "\n\n" + body + closing


def write(folder: Path, name: str, content: str | bytes, *, age: float = 3600.0) -> Path:
    """Write a file and date it ``age`` seconds back (older than the half-written guard)."""
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        p.write_text(content, encoding="utf-8")
    else:
        p.write_bytes(content)
    t = time.time() - age
    os.utime(p, (t, t))
    return p


BROKEN: dict[str, bytes] = {
    "broken_yaml.md": b'---\ntitle: "unterminated\ndate: [1, 2\n---\nbody\n',
    "no_front_matter.md": b"Just a paragraph, no front matter.\n",
    "no_title.md": b'---\ndate: "2025-02-12 10:00:00"\nsummary: x\n---\nno heading in this body\n',
    "binary.md": bytes(range(256)) * 40,
    "empty.md": b"",
    "not_closed.md": b'---\ntitle: "open"\ndate: "2025-02-12 10:00:00"\n',
    "list_front_matter.md": b"---\n- a\n- b\n---\nbody\n",
}

# Kept, with a warning.
ODD: dict[str, bytes] = {
    "bad_date.md": article_text("Bad date article", date="not a date",
                                url="https://example.com/bad-date").encode(),
    "gbk.md": article_text("GBK 编码的文章", outlet="新浪", url="https://news.sina.com.cn/gbk",
                           body="苹果与阿里巴巴合作。").encode("gbk"),
    "gb18030.md": article_text("GB18030 编码 𠀀", outlet="网易", url="https://news.163.com/gb18030",
                               body="中文正文 𠀀。").encode("gb18030"),
    "bom.md": b"\xef\xbb\xbf" + article_text("BOM article", url="https://example.com/bom").encode(),
}


def write_config(path: Path, folder: Path, db_url: str, **folder_opts: Any) -> Path:
    opts = "".join(f", {k}: {json.dumps(v)}" for k, v in folder_opts.items())
    path.write_text(
        f'database: {{url: "{db_url}"}}\n'
        "timezone: Asia/Shanghai\n"
        "sources:\n"
        f'  - {{name: local, type: folder, path: "{folder}"{opts}}}\n'
        "adapters: {console: {}}\n",
        encoding="utf-8",
    )
    return path


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


def cli_json(*args: str, **kw: Any) -> Any:
    res = cli(*args, "--json", **kw)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)
