"""Scores for clustering against labels: B-cubed for stories, pairwise for duplicates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from itertools import combinations


def bcubed(pred: Mapping[str, Hashable], gold: Mapping[str, Hashable]) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1 over the items both mappings know."""
    items = [k for k in gold if k in pred]
    if not items:
        return 0.0, 0.0, 0.0
    by_pred: dict[Hashable, set[str]] = defaultdict(set)
    by_gold: dict[Hashable, set[str]] = defaultdict(set)
    for k in items:
        by_pred[pred[k]].add(k)
        by_gold[gold[k]].add(k)
    p = r = 0.0
    for k in items:
        pc, gc = by_pred[pred[k]], by_gold[gold[k]]
        both = len(pc & gc)
        p += both / len(pc)
        r += both / len(gc)
    p, r = p / len(items), r / len(items)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def pairs(groups: Mapping[str, Hashable]) -> set[tuple[str, str]]:
    by: dict[Hashable, list[str]] = defaultdict(list)
    for k, g in groups.items():
        by[g].append(k)
    out: set[tuple[str, str]] = set()
    for members in by.values():
        out.update(combinations(sorted(members), 2))
    return out


def pairwise(pred: Mapping[str, Hashable], gold: Mapping[str, Hashable]) -> tuple[float, float, int, int]:
    """Pairwise precision and recall, with the predicted and gold pair counts."""
    pp, gp = pairs(pred), pairs(gold)
    tp = len(pp & gp)
    return (tp / len(pp) if pp else 1.0), (tp / len(gp) if gp else 1.0), len(pp), len(gp)
