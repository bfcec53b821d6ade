"""Listing a folder source's files by their real paths.

Whoever can write into the crawler's folder must not be able to make the bot read anything
else, nor make a pass endless. So the walk never follows a symlink to a folder (a folder
inside is read under its own path anyway; one outside is not ours), follows a symlink to a
file only when the file's real path lies inside the folder, and walks each real folder once
(a bind mount can loop too). Whatever is left out for such a reason is reported once, with it.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

LEAVES = "symlink leaves the folder"
LOOP = "symlink loop"


@dataclass(slots=True)
class Listing:
    real_root: str
    files: dict[str, os.stat_result] = field(default_factory=dict)  # POSIX path inside -> stat
    refused: dict[str, str] = field(default_factory=dict)  # POSIX path inside -> reason


def is_inside(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it (both real, absolute paths)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A glob pattern (``**/*.md``) as a regex over POSIX paths, with glob's rules: ``*`` stays
    inside one name, ``**`` spans folders, and a wildcard does not match a leading dot."""
    parts = [p for p in pattern.replace(os.sep, "/").split("/") if p]
    out: list[str] = []
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg == "**":
            out.append(r"(?:(?!\.)[^/]+(?:/(?!\.)[^/]+)*)?" if last else r"(?:(?!\.)[^/]+/)*")
            continue
        out.append(("" if seg.startswith(".") else r"(?!\.)") + _segment(seg) + ("" if last else "/"))
    return re.compile("".join(out))


def _segment(seg: str) -> str:
    """One name's wildcards (``*``, ``?``, ``[…]``, ``[!…]``), as fnmatch reads them."""
    out, i, n = [], 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and seg[j] == "!":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            j = seg.find("]", j)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = seg[i + 1:j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                elif body.startswith("^"):
                    body = "\\" + body
                out.append(f"[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def list_files(root: str, pattern: str) -> Listing:
    """The regular files under ``root`` whose path matches ``pattern``, by real path.

    Raises OSError only when ``root`` itself cannot be read.
    """
    real_root = os.path.realpath(root)
    match = compile_pattern(pattern).fullmatch
    max_depth = None if "**" in pattern else pattern.replace(os.sep, "/").strip("/").count("/")
    hidden = any(p.startswith(".") for p in pattern.split("/"))
    out = Listing(real_root)
    top = os.stat(real_root)
    visited = {(top.st_dev, top.st_ino)}
    stack: list[tuple[str, str, int]] = [("", real_root, 0)]
    first = True
    while stack:
        rel_dir, real_dir, depth = stack.pop()
        try:
            with os.scandir(real_dir) as it:
                entries = list(it)
        except OSError:
            if first:
                raise
            log.debug("cannot list %s", real_dir, exc_info=True)
            continue
        first = False
        descend = max_depth is None or depth < max_depth
        for e in entries:
            if not hidden and e.name.startswith("."):
                continue
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            try:
                if e.is_symlink():
                    _link(out, e, rel, real_dir, real_root, match, descend)
                elif e.is_dir(follow_symlinks=False):
                    if not descend:
                        continue
                    st = e.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) in visited:
                        out.refused[rel] = "folder loop: the same folder was already read (a bind mount?)"
                        continue
                    visited.add((st.st_dev, st.st_ino))
                    stack.append((rel, e.path, depth + 1))
                elif match(rel):
                    st = e.stat(follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode):
                        out.files[rel] = st
                    else:
                        out.refused[rel] = "not a regular file"
            except OSError:  # vanished meanwhile, or unreadable: the next pass sees it again
                log.debug("cannot stat %s", e.path, exc_info=True)
    out.files = dict(sorted(out.files.items()))
    out.refused = dict(sorted(out.refused.items()))
    return out


def _link(out: Listing, e: os.DirEntry[str], rel: str, real_dir: str, real_root: str,
          match: object, descend: bool) -> None:
    matches = match(rel) is not None  # type: ignore[operator]
    try:
        st = os.stat(e.path)  # follows the whole chain
    except OSError as exc:
        if matches:
            if exc.errno == errno.ELOOP:
                out.refused[rel] = LOOP
            elif exc.errno == errno.ENOENT:
                out.refused[rel] = "broken symlink: its target does not exist"
            else:
                out.refused[rel] = f"cannot follow the symlink: {exc.strerror or exc}"
        return
    target = os.path.realpath(e.path)
    inside = is_inside(target, real_root)
    if stat.S_ISDIR(st.st_mode):
        if not descend:
            return
        if not inside:
            out.refused[rel] = f"{LEAVES} (to {target})"
        elif is_inside(real_dir, target):
            out.refused[rel] = f"{LOOP} (to a folder that contains it)"
        else:
            # Never followed: the folder it names is inside, and read under its own path.
            log.debug("symlink %s to a folder inside the source is not followed", rel)
        return
    if not matches:
        return
    if not inside:
        out.refused[rel] = f"{LEAVES} (to {target})"
    elif not stat.S_ISREG(st.st_mode):
        out.refused[rel] = "not a regular file"
    else:
        out.files[rel] = st
