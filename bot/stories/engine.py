"""The story engine: incremental duplicate folding and story assignment, all in memory.

Articles are fed one at a time in arrival order; every decision depends only on the
articles fed before, so replaying the same sequence (``recluster``) gives the same
result. Each article is compared with candidates only: LSH buckets and equal titles
for duplicates, an inverted index over recent articles' top terms for stories, both
restricted to the time window, so the cost per article does not grow with the archive.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from bot.stories import features as F
from bot.stories.roundup import is_roundup
from bot.text.clean import detect_lang
from bot.text.tokenize import is_strong_term, name_terms, terms

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Doc:
    """What the engine needs of an article."""

    id: int
    title: str
    body: str
    published_at: datetime
    outlet: str = ""
    lang: str = ""


@dataclass(slots=True)
class Params:
    window_hours: float = 72.0
    similarity: float = 0.23  # story: average-link cosine to join
    dup_window_hours: float = 168.0  # reposts come later than follow-ups do
    dup_title_similarity: float = 0.5  # copies keep (most of) their title
    dup_containment: float = 0.75  # duplicates: shingle containment of the shorter text
    dup_length_ratio: float = 0.25  # ... and the shorter is at least this share of the longer
    dup_min_shingles: int = 60  # below this, the stripped text is too short to judge by itself
    title_weight: float = 3.0
    name_share: float = 0.25  # weight of the Latin-names cosine beside the all-words cosine
    title_share: float = 0.25  # ... and of the title-only cosine (short pages are mostly title)
    cross_lang_scale: float = 3.0  # Chinese and English reports share only names: rescale their cosine
    link_top: int = 0  # 0: average link over the story's members; k: mean of the k best links
    merge: bool = True  # after an article joins, merge its story with a candidate when they link well
    same_outlet_scale: float = 0.7
    id_conflict_scale: float = 0.5  # both name CVE ids and share none: most likely two events  # one outlet's pages share house style and recurring topics
    strong_weight: float = 3.0
    top_terms: int = 12  # per article, in the inverted index
    max_candidates: int = 10  # duplicate candidates confirmed per article
    max_members: int = 40  # story members an average link looks at (the most recent)

    @property
    def window_seconds(self) -> float:
        return self.window_hours * 3600.0


@dataclass(slots=True)
class Assignment:
    id: int
    story: int
    duplicate_of: int | None
    signature: list[int]
    new_story: bool = False


@dataclass(slots=True)
class _Item:
    id: int
    outlet: str
    title: str
    ts: float
    title_key: str
    lines: list[tuple[int, str]]
    sig: list[int]
    root: int
    story: int
    roundup: bool
    garbled: bool = False
    title_line: int = 0
    zh: bool = False
    title_terms: list[str] = field(default_factory=list)
    line_terms: list[list[str]] = field(default_factory=list)
    title_names: list[str] = field(default_factory=list)
    line_names: list[list[str]] = field(default_factory=list)
    vec: dict[str, float] | None = None
    nvec: dict[str, float] | None = None
    tvec: dict[str, float] | None = None
    top: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _StoryState:
    id: int
    members: list[int] = field(default_factory=list)  # every article id, arrival order
    reps: list[int] = field(default_factory=list)  # non-duplicate, non-round-up members
    first_ts: float = math.inf
    last_ts: float = -math.inf
    roundup: bool = False


@dataclass(slots=True)
class Counters:
    dup_candidates: int = 0
    dup_confirms: int = 0
    story_candidates: int = 0
    similarity_evals: int = 0


class Engine:
    def __init__(self, params: Params | None = None, df: dict[str, int] | None = None, n_docs: int = 0):
        self.p = params or Params()
        self.df: dict[str, int] = dict(df or {})
        self.n_docs = n_docs
        self.items: dict[int, _Item] = {}
        self.stories: dict[int, _StoryState] = {}
        self._lsh: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
        self._titles: dict[str, list[int]] = defaultdict(list)
        # line key -> {dup root -> articles holding it}: a line shared by several roots is boilerplate.
        self._line_roots: dict[int, dict[int, int]] = defaultdict(dict)
        self._outlet_line_roots: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
        self._root_members: dict[int, list[int]] = defaultdict(list)
        self._term_index: dict[str, list[int]] = defaultdict(list)
        # (outlet, title term) -> articles whose title has it: an outlet's title template words.
        self._outlet_title: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._next_provisional = -1
        self._last_candidates: list[int] = []
        self.merges: list[tuple[int, int]] = []  # (absorbed, survivor), for the store to apply
        self.df_delta: Counter[str] = Counter()
        self.counters = Counters()

    # ---------------------------------------------------------------- public

    def add(self, doc: Doc) -> Assignment:
        """Fold ``doc`` into a duplicate group and a story; returns where it went."""
        if doc.id in self.items:
            self.remove(doc.id)
        it = self._make_item(doc)
        dup_of = self._find_duplicate(it)
        new_story = False
        if dup_of is not None:
            it.root = self.items[dup_of].root
            it.story = self.items[dup_of].story
        else:
            it.root = it.id
            self._count_terms(it)
            if it.roundup:
                it.story, new_story = self._new_story(), True
            else:
                best = self._best_story(it)
                if best is None:
                    it.story, new_story = self._new_story(), True
                else:
                    it.story = best
        self._insert(it)
        if dup_of is None and not it.roundup and self.p.merge:
            self._merge_around(it)
        return Assignment(it.id, it.story, None if it.root == it.id else it.root, it.sig, new_story)

    def restore(self, doc: Doc, story: int, duplicate_of: int | None, sig: list[int] | None) -> None:
        """Put an already-assigned article back (state loaded from the store); no decision is made."""
        if doc.id in self.items:
            self.remove(doc.id)
        it = self._make_item(doc, sig)
        root = duplicate_of if duplicate_of is not None and duplicate_of in self.items else doc.id
        it.root = self.items[root].root if root != doc.id else root
        it.story = story
        self._insert(it)

    def remove(self, article_id: int) -> None:
        it = self.items.pop(article_id, None)
        if it is None:
            return
        for key in F.bands(it.sig):
            ids = self._lsh.get(key)
            if ids and it.id in ids:
                ids.remove(it.id)
        if it.title_key in self._titles and it.id in self._titles[it.title_key]:
            self._titles[it.title_key].remove(it.id)
        for k in {k for k, _ in it.lines}:
            for table, key in ((self._line_roots, k), (self._outlet_line_roots, (it.outlet, k))):
                roots = table.get(key)  # type: ignore[attr-defined]
                if roots and it.root in roots:
                    roots[it.root] -= 1
                    if roots[it.root] <= 0:
                        del roots[it.root]
        members = self._root_members.get(it.root)
        if members and it.id in members:
            members.remove(it.id)
        for t in it.top:
            ids = self._term_index.get(t)
            if ids and it.id in ids:
                ids.remove(it.id)
        for t in set(it.title_terms) | set(it.title_names):
            holders = self._outlet_title.get((it.outlet, t))
            if holders and it.id in holders:
                holders.remove(it.id)
        st = self.stories.get(it.story)
        if st:
            if it.id in st.members:
                st.members.remove(it.id)
            if it.id in st.reps:
                st.reps.remove(it.id)
            if not st.members:
                del self.stories[st.id]

    def rename_story(self, old: int, new: int) -> None:
        """Give a provisional story (negative id) the id the store assigned."""
        st = self.stories.pop(old)
        st.id = new
        self.stories[new] = st
        for aid in st.members:
            self.items[aid].story = new

    def evict_before(self, ts: float) -> int:
        """Forget articles published before ``ts`` (outside every future window)."""
        old = [i for i, it in self.items.items() if it.ts < ts]
        for aid in old:
            self.remove(aid)
        return len(old)

    def story_members(self, story: int) -> list[int]:
        st = self.stories.get(story)
        return list(st.members) if st else []

    def headline(self, story: int) -> int | None:
        """The member closest to the others (the story's medoid); the earliest on ties."""
        st = self.stories.get(story)
        if not st:
            return None
        reps = [a for a in st.reps if a in self.items] or [a for a in st.members if a in self.items]
        if len(reps) <= 2:
            return reps[0] if reps else None
        vecs = {a: self._vector(self.items[a]) for a in reps[-self.p.max_members :]}
        best, best_score = None, -1.0
        for a, va in vecs.items():
            score = sum(_cos(va, vb) for b, vb in vecs.items() if b != a)
            if score > best_score + 1e-12:
                best, best_score = a, score
        return best

    # --------------------------------------------------------------- features

    def _make_item(self, doc: Doc, sig: list[int] | None = None) -> _Item:
        lines = F.body_lines(doc.body)
        text = "\n".join(t for _, t in lines) or doc.title
        if sig is None:
            sig = F.minhash([F.shingles(text)])[0]
        it = _Item(
            id=doc.id,
            outlet=doc.outlet or "",
            title=doc.title,
            ts=doc.published_at.timestamp(),
            title_key=F.title_key(doc.title),
            lines=lines,
            sig=sig,
            root=doc.id,
            story=0,
            roundup=is_roundup(doc.title, doc.body, doc.outlet),
            garbled=F.garbled(doc.title, doc.body),
            title_line=F.line_key(F.norm_line(doc.title)),
        )
        it.title_terms = terms(doc.title)
        it.line_terms = [terms(t) for _, t in lines]
        it.title_names = name_terms(doc.title)
        it.line_names = [name_terms(t) for _, t in lines]
        it.zh = (doc.lang or detect_lang(doc.title + "\n" + text[:2000])).startswith("zh")
        return it

    def _boiler_for_outlet(self, it: _Item) -> set[int]:
        """Lines of ``it`` that also occur in another page (dup group) of the same outlet."""
        out = set()
        for k, _ in it.lines:
            roots = self._outlet_line_roots.get((it.outlet, k))
            if roots and any(r != it.root for r in roots):
                out.add(k)
        return out

    def _tf(self, it: _Item, names: bool = False) -> Counter[str]:
        boiler = self._boiler_for_outlet(it)
        tf: Counter[str] = Counter()
        seen: set[int] = set()
        per_line = it.line_names if names else it.line_terms
        for (k, _), ts in zip(it.lines, per_line, strict=True):
            if k in boiler or k in seen:  # a line repeated inside one page counts once
                continue
            seen.add(k)
            tf.update(ts)
        for t in set(it.title_names if names else it.title_terms):
            # Words most of an outlet's titles carry ("breached accounts", "starred") name no event.
            n = min(len(self._outlet_title.get((it.outlet, t), ())), _TEMPLATE_CAP) if it.outlet else 1
            tf[t] += self.p.title_weight / max(1, n)
        return tf

    def _count_terms(self, it: _Item) -> None:
        """Rolling document frequencies: each non-duplicate article counts once."""
        self.n_docs += 1
        for t in set(it.title_terms).union(*it.line_terms) if it.line_terms else set(it.title_terms):
            self.df[t] = self.df.get(t, 0) + 1
            self.df_delta[t] += 1

    def _idf(self, term: str) -> float:
        return math.log((self.n_docs + 1) / (self.df.get(term, 0) + 1)) + 1.0

    def _weigh(self, tf: Counter[str]) -> dict[str, float]:
        vec: dict[str, float] = {}
        for t, n in tf.items():
            w = (1.0 + math.log(n) if n >= 1 else n) * self._idf(t)  # sublinear tf; discounted terms below 1
            if is_strong_term(t):
                w *= self.p.strong_weight
            vec[t] = w
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {t: w / norm for t, w in vec.items()}

    def _vector(self, it: _Item) -> dict[str, float]:
        if it.vec is None:
            it.vec = self._weigh(self._tf(it))
        return it.vec

    def _ids(self, it: _Item) -> frozenset[str]:
        return frozenset(t for t in self._vector(it) if is_strong_term(t))

    def _title_vector(self, it: _Item) -> dict[str, float]:
        if it.tvec is None:
            tf: Counter[str] = Counter()
            for t in set(it.title_terms) | set(it.title_names):
                n = min(len(self._outlet_title.get((it.outlet, t), ())), _TEMPLATE_CAP) if it.outlet else 1
                tf[t] += 1.0 / max(1, n)
            it.tvec = self._weigh(tf)
        return it.tvec

    def _name_vector(self, it: _Item) -> dict[str, float]:
        if it.nvec is None:
            it.nvec = self._weigh(self._tf(it, names=True))
        return it.nvec

    # ------------------------------------------------------------- duplicates

    def _find_duplicate(self, it: _Item) -> int | None:
        cands: set[int] = set()
        for key in F.bands(it.sig):
            cands.update(self._lsh.get(key, ()))
        if len(it.title_key) >= 8:
            cands.update(self._titles.get(it.title_key, ()))
        win = self.p.dup_window_hours * 3600.0

        def rank(c: int) -> tuple[bool, float, float, int]:
            other = self.items[c]
            # Equal titles first, then text overlap, then title overlap: pages sharing one site
            # frame all tie on text, and the copy is the one whose title matches.
            return (other.title_key != it.title_key, -round(F.sig_jaccard(it.sig, other.sig), 2),
                    -F.title_similarity(it.title_key, other.title_key), c)

        ranked = sorted(
            (c for c in cands if c in self.items and abs(self.items[c].ts - it.ts) <= win), key=rank
        )[: self.p.max_candidates]
        self.counters.dup_candidates += len(ranked)
        best: tuple[float, int] | None = None
        for c in ranked:
            other = self.items[c]
            score = self._dup_score(it, other)
            if score is not None and (best is None or score > best[0]):
                best = (score, other.root)
        return best[1] if best else None

    def _dup_score(self, a: _Item, b: _Item) -> float | None:
        """Containment of the shorter text once lines shared with other pages are left out."""
        self.counters.dup_confirms += 1
        root = b.root

        def distinctive(x: _Item) -> str:
            keep = []
            for k, t in x.lines:
                if k == x.title_line:
                    continue  # the title repeated as a heading: titles are compared on their own
                roots = self._line_roots.get(k)
                if roots and any(r != root for r in roots if r != a.id):
                    continue  # the line is also in some other page: boilerplate, not evidence
                keep.append(t)
            return "\n".join(keep)

        same_title = len(a.title_key) >= 8 and a.title_key == b.title_key
        if (a.roundup or b.roundup) and not same_title:
            return None  # one site's daily digests can share a whole page; only the same issue is a copy
        if (a.garbled or b.garbled) and F.norm_line(a.title) == F.norm_line(b.title):
            return 0.5  # the text no longer reads; an equal title is all there is
        ta, tb = distinctive(a), distinctive(b)
        sa, sb = F.shingles(ta), F.shingles(tb)
        small = min(len(sa), len(sb))
        if small < self.p.dup_min_shingles:
            # Too little text of its own: only an equal title, with what text there is agreeing, decides.
            if same_title and (not sa or not sb or len(sa & sb) / max(1, small) >= 0.5):
                return 0.5
            return None
        if F.title_similarity(a.title_key, b.title_key) < self.p.dup_title_similarity:
            return None  # copies keep their title; pages sharing only a site's frame do not
        containment = len(sa & sb) / small
        ratio = small / max(len(sa), len(sb))
        if containment >= self.p.dup_containment and ratio >= self.p.dup_length_ratio:
            return containment
        return None

    # ----------------------------------------------------------------- stories

    def _new_story(self) -> int:
        sid = self._next_provisional
        self._next_provisional -= 1
        return sid

    def _best_story(self, it: _Item) -> int | None:
        vec = self._vector(it)
        top = _top_terms(vec, self.p.top_terms)
        win = self.p.window_seconds
        cand_stories: set[int] = set()
        for t in top:
            for aid in self._term_index.get(t, ()):
                other = self.items.get(aid)
                if other is not None and abs(other.ts - it.ts) <= win:
                    cand_stories.add(other.story)
        self.counters.story_candidates += len(cand_stories)
        best: tuple[float, int] | None = None
        for sid in sorted(cand_stories):
            st = self.stories.get(sid)
            if st is None or st.roundup:
                continue
            reps = [a for a in st.reps if a in self.items and abs(self.items[a].ts - it.ts) <= win]
            reps = reps[-self.p.max_members :]
            if not reps:
                continue
            self.counters.similarity_evals += len(reps)
            sims = [self._sim(it, self.items[a]) for a in reps]
            if self.p.link_top:
                sims = sorted(sims, reverse=True)[: self.p.link_top]
            score = sum(sims) / len(sims)
            if best is None or score > best[0]:
                best = (score, sid)
        self._last_candidates = sorted(cand_stories)
        if best and best[0] >= self.p.similarity:
            return best[1]
        return None

    def _sim(self, a: _Item, b: _Item) -> float:
        """Blend of three cosines: all words, Latin names only, titles only."""
        wn, wt = self.p.name_share, self.p.title_share
        s = ((1 - wn - wt) * _cos(self._vector(a), self._vector(b))
             + wn * _cos(self._name_vector(a), self._name_vector(b))
             + wt * _cos(self._title_vector(a), self._title_vector(b)))
        if a.zh != b.zh:
            s = min(1.0, s * self.p.cross_lang_scale)
        ia, ib = self._ids(a), self._ids(b)
        if ia and ib and not ia & ib:
            s *= self.p.id_conflict_scale
        if a.outlet and a.outlet == b.outlet:
            s *= self.p.same_outlet_scale
        return s

    def _link(self, a: _StoryState, b: _StoryState, ts: float) -> float:
        """Average link between two stories' recent representative members."""
        win = self.p.window_seconds
        ra = [x for x in a.reps if x in self.items and abs(self.items[x].ts - ts) <= win][-self.p.max_members:]
        rb = [x for x in b.reps if x in self.items and abs(self.items[x].ts - ts) <= win][-self.p.max_members:]
        if not ra or not rb:
            return 0.0
        self.counters.similarity_evals += len(ra) * len(rb)
        total = sum(self._sim(self.items[x], self.items[y]) for x in ra for y in rb)
        return total / (len(ra) * len(rb))

    def _merge_around(self, it: _Item) -> None:
        """Two halves of one story that grew apart join once their average link clears the bar."""
        while True:
            st = self.stories[it.story]
            best: tuple[float, int] | None = None
            for sid in self._last_candidates:
                other = self.stories.get(sid)
                if other is None or sid == st.id or other.roundup:
                    continue
                score = self._link(st, other, it.ts)
                if score >= self.p.similarity and (best is None or score > best[0]):
                    best = (score, sid)
            if best is None:
                return
            self._merge(st.id, best[1])

    def _merge(self, a: int, b: int) -> None:
        sa, sb = self.stories[a], self.stories[b]
        # The story first seen survives (ties: lower id), so ids stay stable for what was sent.
        keep, gone = (sa, sb) if (min(sa.members), sa.id) <= (min(sb.members), sb.id) else (sb, sa)
        for aid in gone.members:
            if aid in self.items:
                self.items[aid].story = keep.id
        keep.members = sorted(keep.members + gone.members)
        keep.reps = sorted(keep.reps + gone.reps)
        keep.first_ts = min(keep.first_ts, gone.first_ts)
        keep.last_ts = max(keep.last_ts, gone.last_ts)
        del self.stories[gone.id]
        self._last_candidates = [keep.id if s == gone.id else s for s in self._last_candidates]
        self.merges.append((gone.id, keep.id))

    # ------------------------------------------------------------------ index

    def _insert(self, it: _Item) -> None:
        self.items[it.id] = it
        for key in F.bands(it.sig):
            self._lsh[key].append(it.id)
        if len(it.title_key) >= 8:
            self._titles[it.title_key].append(it.id)
        self._root_members[it.root].append(it.id)
        for k in {k for k, _ in it.lines}:
            roots = self._line_roots[k]
            roots[it.root] = roots.get(it.root, 0) + 1
            oroots = self._outlet_line_roots[(it.outlet, k)]
            if it.root not in oroots and oroots:
                # The line becomes boilerplate for the pages already holding it: refresh their vectors.
                for r in oroots:
                    for aid in self._root_members.get(r, ()):
                        other = self.items.get(aid)
                        if other is not None:
                            other.vec = other.nvec = other.tvec = None
            oroots[it.root] = oroots.get(it.root, 0) + 1
        st = self.stories.get(it.story)
        if st is None:
            st = self.stories[it.story] = _StoryState(it.story, roundup=it.roundup)
        st.members.append(it.id)
        st.first_ts = min(st.first_ts, it.ts)
        st.last_ts = max(st.last_ts, it.ts)
        if it.root == it.id and not it.roundup:
            if it.outlet:
                for t in set(it.title_terms) | set(it.title_names):
                    holders = self._outlet_title[(it.outlet, t)]
                    holders.append(it.id)
                    if len(holders) <= _TEMPLATE_CAP:
                        for aid in holders:
                            other = self.items.get(aid)
                            if other is not None:
                                other.vec = other.nvec = other.tvec = None
            st.reps.append(it.id)
            it.vec = it.nvec = it.tvec = None
            it.top = _top_terms(self._vector(it), self.p.top_terms)
            for t in it.top:
                self._term_index[t].append(it.id)


_TEMPLATE_CAP = 4


def _top_terms(vec: dict[str, float], n: int) -> list[str]:
    return [t for t, _ in sorted(vec.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _cos(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())
