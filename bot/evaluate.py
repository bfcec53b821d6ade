"""Score story clustering on a labelled folder, through the real pipeline.

The folder is ingested into a temporary SQLite store by ``run_ingest`` (a folder source,
the caller's story settings), then each file's ``story_id`` / ``duplicate_of`` is read
back and compared with ``labels.tsv`` (columns ``file``, ``story``, ``dup``).
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bot.app import App
from bot.config import Settings, load_settings
from bot.ingest import run_ingest
from bot.store.articles import list_articles
from bot.stories.metrics import bcubed, pairwise


@dataclass
class Scores:
    """One measure's figures: B-cubed for stories, pairwise for duplicates (no F1 there)."""

    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    predicted: int = 0  # stories, or duplicate pairs
    gold: int = 0


@dataclass
class EvalResult:
    folder: str
    documents: int = 0
    labelled: int = 0
    story: Scores = field(default_factory=Scores)
    dup: Scores = field(default_factory=Scores)
    seconds: float = 0.0
    seeds: dict[str, Any] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder, "documents": self.documents, "labelled": self.labelled,
            "story": {"precision": round(self.story.precision, 4), "recall": round(self.story.recall, 4),
                      "f1": round(self.story.f1, 4), "predicted": self.story.predicted,
                      "gold": self.story.gold},
            "duplicates": {"precision": round(self.dup.precision, 4), "recall": round(self.dup.recall, 4),
                           "predicted_pairs": self.dup.predicted, "gold_pairs": self.dup.gold},
            "seeds": self.seeds, "seconds": round(self.seconds, 2), "unlabelled": self.unlabelled,
        }

    def render_text(self) -> str:
        lines = [
            f"{self.folder}: {self.documents} documents, {self.labelled} labelled ({self.seconds:.1f}s)",
            f"stories     B-cubed precision {self.story.precision:.3f}  recall {self.story.recall:.3f}  "
            f"F1 {self.story.f1:.3f}   ({self.story.predicted} predicted, {self.story.gold} labelled)",
            f"duplicates  pairwise precision {self.dup.precision:.3f}  recall {self.dup.recall:.3f}   "
            f"({self.dup.predicted} predicted pairs, {self.dup.gold} labelled)",
        ]
        if self.seeds:
            s = self.seeds
            verdict = "OK" if s["together"] and not s["intruders"] else "NOT OK"
            lines.append(f"seeds       story {s['story']!r}: {s['members']} documents in "
                         f"{s['predicted_stories']} predicted story(ies), {len(s['intruders'])} unrelated "
                         f"joined -> {verdict}")
            for t in s["intruders"]:
                lines.append(f"            intruder: {t}")
        if self.unlabelled:
            lines.append(f"({len(self.unlabelled)} files have no label and were left out)")
        return "\n".join(lines)


def read_labels(path: Path) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            name = (row.get("file") or "").strip()
            if name:
                out[name] = ((row.get("story") or "").strip(), (row.get("dup") or "").strip() or name)
    return out


def _find_labels(folder: Path, labels: str | None) -> Path:
    if labels:
        return Path(labels)
    for candidate in (folder / "labels.tsv", folder.parent / "labels.tsv"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no labels.tsv in {folder} or {folder.parent} (give --labels)")


def _inputs(folder: Path, labels: str | None) -> tuple[Path, dict[str, tuple[str, str]]]:
    folder = folder.resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return folder, read_labels(_find_labels(folder, labels))


async def _ingest(folder: Path, settings: Settings | None) -> list[Any]:
    """The folder through the real ingest into a temporary SQLite store; the stored articles."""
    with tempfile.TemporaryDirectory(prefix="digestbot-eval-") as tmp:
        cfg: dict[str, Any] = {
            "database": {"url": f"sqlite:///{Path(tmp) / 'eval.db'}"},
            "sources": [{"name": "eval", "type": "folder", "path": str(folder)}],
            "adapters": {"console": {}},
        }
        if settings is not None:
            cfg["timezone"] = settings.timezone
            cfg["stories"] = settings.stories.model_dump()
        app = await App.open(load_settings(text=json.dumps(cfg)))
        try:
            await run_ingest(app)
            return await list_articles(app.store)
        finally:
            await app.close()


def _score(folder: str, arts: list[Any], gold: dict[str, tuple[str, str]]) -> EvalResult:
    res = EvalResult(folder=folder, documents=len(arts))
    pred_story: dict[str, int] = {}
    pred_dup: dict[str, int] = {}
    titles: dict[str, str] = {}
    for a in arts:
        name = PurePosixPath(a.path or "").name
        if name not in gold:
            res.unlabelled.append(a.path or a.external_id)
            continue
        pred_story[name] = a.story_id if a.story_id is not None else -(a.id or 0)
        pred_dup[name] = a.duplicate_of or a.id or 0
        titles[name] = a.title
    gold_story = {k: v[0] for k, v in gold.items() if k in pred_story}
    gold_dup = {k: v[1] for k, v in gold.items() if k in pred_story}
    res.labelled = len(gold_story)
    res.story.precision, res.story.recall, res.story.f1 = bcubed(pred_story, gold_story)
    (res.dup.precision, res.dup.recall, res.dup.predicted,
     res.dup.gold) = pairwise(pred_dup, gold_dup)
    res.story.predicted = len(set(pred_story.values()))
    res.story.gold = len(set(gold_story.values()))
    res.seeds = _seed_check(gold_story, pred_story, titles)
    return res


async def evaluate_folder(folder: str | Path, labels: str | None = None, settings: Settings | None = None
                          ) -> EvalResult:
    folder, gold = _inputs(Path(folder), labels)
    started = time.perf_counter()
    res = _score(str(folder), await _ingest(folder, settings), gold)
    res.seconds = time.perf_counter() - started
    return res


@dataclass
class DayResult:
    """Each calendar day of a labelled folder alone in a fresh store, beside the whole folder."""

    whole: EvalResult
    days: dict[str, EvalResult] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        """Document-weighted means over the days (a day's weight: its labelled documents)."""
        total = sum(r.labelled for r in self.days.values()) or 1
        measures = (("story", "precision"), ("story", "recall"), ("story", "f1"),
                    ("dup", "precision"), ("dup", "recall"))
        return {f"{m}_{f}": sum(getattr(getattr(r, m), f) * r.labelled for r in self.days.values()) / total
                for m, f in measures}

    def as_dict(self) -> dict[str, Any]:
        m = self.mean()
        worst = min(self.days.items(), key=lambda kv: kv[1].story.precision) if self.days else None
        return {
            "whole": self.whole.as_dict(),
            "days": {d: r.as_dict() for d, r in self.days.items()},
            "mean": {"story": {"precision": round(m["story_precision"], 4),
                               "recall": round(m["story_recall"], 4), "f1": round(m["story_f1"], 4)},
                     "duplicates": {"precision": round(m["dup_precision"], 4),
                                    "recall": round(m["dup_recall"], 4)},
                     "documents": sum(r.labelled for r in self.days.values())},
            "worst_day": ({"day": worst[0], "story_precision": round(worst[1].story.precision, 4)}
                          if worst else None),
        }

    def render_text(self) -> str:
        lines = [self.whole.render_text(), "", "each day alone in a fresh store:",
                 "  day          docs  story P  story R  story F1   dup P   dup R"]
        for day, r in self.days.items():
            lines.append(f"  {day}  {r.labelled:5d}  {r.story.precision:7.3f}  {r.story.recall:7.3f}  "
                         f"{r.story.f1:8.3f}  {r.dup.precision:6.3f}  {r.dup.recall:6.3f}")
        m = self.mean()
        lines.append(f"  {'mean':10}  {sum(r.labelled for r in self.days.values()):5d}  "
                     f"{m['story_precision']:7.3f}  {m['story_recall']:7.3f}  {m['story_f1']:8.3f}  "
                     f"{m['dup_precision']:6.3f}  {m['dup_recall']:6.3f}   (document-weighted)")
        return "\n".join(lines)


async def evaluate_by_day(folder: str | Path, labels: str | None = None,
                          settings: Settings | None = None) -> DayResult:
    """The whole folder, then each calendar day of it (in the configured zone) alone in a fresh store.

    A day's files are copied into a temporary folder of their own, so each run is exactly what a
    new user who only had that day would get.
    """
    from zoneinfo import ZoneInfo

    folder, gold = _inputs(Path(folder), labels)
    started = time.perf_counter()
    arts = await _ingest(folder, settings)
    whole = _score(str(folder), arts, gold)
    whole.seconds = time.perf_counter() - started
    zone = ZoneInfo(settings.timezone if settings is not None else "UTC")
    by_day: dict[str, list[str]] = defaultdict(list)
    for a in arts:
        if a.path and PurePosixPath(a.path).name in gold:
            by_day[a.published_at.astimezone(zone).date().isoformat()].append(a.path)
    out = DayResult(whole=whole)
    for day in sorted(by_day):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"digestbot-eval-{day}-") as tmp:
            for rel in by_day[day]:
                # Flat: labels name files, and a day's files never share a name in a labelled set.
                shutil.copy2(folder / rel, Path(tmp) / PurePosixPath(rel).name)
            names = {PurePosixPath(rel).name for rel in by_day[day]}
            day_gold = {k: v for k, v in gold.items() if k in names}
            res = _score(f"{folder} ({day})", await _ingest(Path(tmp), settings), day_gold)
        res.seconds = time.perf_counter() - t0
        out.days[day] = res
    return out


def _seed_check(gold: dict[str, str], pred: dict[str, int], titles: dict[str, str]) -> dict[str, Any]:
    """The seed articles' story: all of it in one predicted story, and nothing else there."""
    seeds = [k for k in gold if k.startswith("seed_")]
    if not seeds:
        return {}
    story = gold[seeds[0]]
    members = [k for k, g in gold.items() if g == story]
    predicted = {pred[k] for k in members}
    by_pred: dict[int, list[str]] = defaultdict(list)
    for k, p in pred.items():
        by_pred[p].append(k)
    intruders = sorted(titles[k] for p in predicted for k in by_pred[p] if gold[k] != story)
    return {"story": story, "members": len(members), "predicted_stories": len(predicted),
            "together": len(predicted) == 1, "intruders": intruders}
