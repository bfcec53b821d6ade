"""The story engine: incremental duplicate folding and story assignment, all in memory.

Articles are fed one at a time in arrival order; every decision depends only on the
articles fed before, so replaying the same sequence (``recluster``) gives the same
result. Each article is compared with candidates only: LSH buckets and equal titles
for duplicates, an inverted index over recent articles' top terms for stories, both
restricted to the time window, so the cost per article does not grow with the archive.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bot.stories import features as F
from bot.text.frequency import is_genre, prior_share
from bot.text.tokenize import is_strong_term, name_terms, term_slots, terms

log = logging.getLogger(__name__)

_VERSIONS = itertools.count(1)
COMMON_NAME_SHARE = 0.03  # a capitalised word more common than this in English is no name
TEMPLATE_GRAM = 7  # characters a title shares with another title of its outlet to count as template


@dataclass(slots=True)
class Doc:
    """What the engine needs of an article."""

    id: int
    title: str
    body: str
    published_at: datetime
    outlet: str = ""
    lang: str = ""
    features: F.ArticleFeatures | None = None  # precomputed where the article was parsed
    url: str = ""  # canonical: one outlet's two items at one address are one page


@dataclass(slots=True)
class Params:
    window_hours: float = 96.0  # four days: a later report (a fix, an arrest) still finds its story
    similarity: float = 0.15  # story: average-link similarity to join (and to merge two stories)
    dup_window_hours: float = 168.0  # reposts come later than follow-ups do
    dup_containment: float = 0.75  # duplicates: shingle containment of the shorter text
    dup_length_ratio: float = 0.25  # ... and the shorter is at least this share of the longer
    dup_title_similarity: float = 0.5  # ... and the titles mostly agree: copies keep their title
    dup_retitled_containment: float = 0.75  # containment asked of a copy whose title was reworded
    dup_same_outlet_title: float = 0.9  # one outlet's two pages are a copy only with titles this alike
    dup_reposted_containment: float = 0.9  # ... or a long text of their own this alike
    dup_reposted_title: float = 0.7  # ... under titles this alike
    dup_copy_shingles: int = 350  # this much text shared with another outlet is a copy, any title
    dup_min_shingles: int = 60  # below this, the stripped text is too short to judge by itself
    title_weight: float = 4.0
    template_titles: int = 2  # other titles of the outlet sharing a phrase that make it the outlet's template
    strong_weight: float = 3.0  # CVE ids
    idf_offset: float = 1.0
    prior_docs: float = 100.0  # how many articles' worth of counts the background prior is worth
    evidence_prior_docs: float = 1000.0  # ... when weighing evidence (rare names stay rare in a young store)
    key_terms: int = 16  # per article: its title words and names plus this many top words are its key terms
    population_hours: float = 24.0  # articles this close in time are the ones a coincidence comes from
    evidence: float = 4.0
    min_shared_terms: int = 2  # distinct key terms a join must share with the story ...
    shared_term_nats: float = 3.0  # ... each at least this unusual
    topic_stories: int = 3  # other stories in the window leading with a term make it a topic (0: off)
    telling_prior: float = 0.003  # ... and no more common than this in general language
    short_terms: int = 8  # fewer words of its own than this beside the title: a short item
    min_shared_words: int = 2  # key terms shared in all (any kind): one shared word is a topic
    one_name_margin: float = 0.1  # similarity this far above the bar lets one shared key term do
    short_one_name_margin: float = 0.3  # ... between a title alone and a full report (two: never)
    house_share: float = 0.4  # a word on this share of an outlet's pages is its house vocabulary
    house_min_titles: int = 10  # ... of at least this many pages
    house_min_own: int = 4  # ... or this many, between one source's own pages
    same_outlet_evidence: float = 10.0  # nats more asked when every member is from the article's outlet
    evidence_per_sim: float = 6.0  # nats less evidence asked per 0.1 of similarity above the bar
    evidence_floor: float = 0.0  # ... but never less than none: shared names must outweigh coincidence
    name_share: float = 0.15  # weight of the Latin-names cosine beside the all-words cosine
    title_share: float = 0.15  # ... and of the title-only cosine (short pages are mostly title)
    cross_lang_scale: float = 2.5  # Chinese and English reports share only names: rescale their cosine
    cross_lang_names: float = 0.1  # ... by that much when their Latin-names cosine reaches this
    cross_lang_weak_scale: float = 2.0  # ... else by this
    same_outlet_scale: float = 0.7  # one outlet's pages share house style and pet topics: ask more
    title_name_conflict: bool = True  # titles naming different companies or products: two events
    id_focus: int = 4  # identifiers of a kind a report names at most, for a conflict to count
    id_conflict_scale: float = 0.5  # both name CVE ids and share none: most likely two events
    vector_terms: int = 80  # 0: keep every term; n: only the n heaviest (less peripheral noise)
    lede_lines: int = 0  # the first n lines of own text weigh double (news puts the event first)
    time_decay: float = 0.1  # per day beyond the first, the share of similarity lost (reports bunch up)
    link_top: int = 0  # 0: average link over the story's members; k: mean of the k best links
    merge: bool = True  # after an article joins, merge its story with a candidate that links well
    merge_reach: float = 0.5  # ... among candidates at least this share of the bar close to the article
    merge_similarity: float = 0.0  # 0: the same bar as joining
    top_terms: int = 12  # per article, in the inverted index
    top_names: int = 4  # ... and Latin names
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


@dataclass(slots=True)
class _Item:
    id: int
    outlet: str
    source: str  # the outlet and the site its link points to (``_source``)
    title: str
    ts: float
    url: str
    title_key: str
    title_line: int
    lines: list[tuple[int, str]]
    roundup: bool
    garbled: bool
    zh: bool
    lang: str
    root: int = 0
    story: int = 0
    match: int = 0  # the live copy a duplicate was matched with (its root may have left the window)
    line_terms: list[list[str]] = field(default_factory=list)
    line_names: list[list[str]] = field(default_factory=list)
    title_terms: list[str] = field(default_factory=list)
    title_names: list[str] = field(default_factory=list)
    bands: list[tuple[int, bytes]] = field(default_factory=list)
    grams: frozenset[str] = frozenset()
    sig_arr: np.ndarray | None = None  # the MinHash signature (uint32), compared for many candidates at once
    tgrams: frozenset[str] | None = None  # title key 3-grams (``Engine._title_sim``)
    slots: list[str | None] | None = None  # title terms with gaps where stop words stood
    # Cached, dropped when the outlet's boilerplate or title template changes.
    tt: tuple[list[str], list[str]] | None = None  # title terms, title names (template removed)
    vec: dict[str, float] | None = None
    nvec: dict[str, float] | None = None
    tvec: dict[str, float] | None = None
    ids: frozenset[str] | None = None
    keys: frozenset[str] | None = None  # key terms, for the same-event check
    okeys: frozenset[str] | None = None  # ... without title phrases shared with the outlet's other titles
    short: bool | None = None  # little text of its own beside the title
    boiler: set[int] | None = None  # keys of its lines that are its outlet's frame
    shingle_key: tuple[int, ...] = ()  # which lines ``shingles`` was cut from
    shingles: np.ndarray | None = None
    packed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # term ids, weights, scaled weights
    top: list[str] = field(default_factory=list)
    # Similarities to lower-id items, each with that item's version when computed; valid
    # while both are clean (a dirty item clears its own and bumps its version).
    sims: dict[int, tuple[int, float]] = field(default_factory=dict)
    version: int = field(default_factory=lambda: next(_VERSIONS))

    def dirty(self) -> None:
        self.tt = self.vec = self.nvec = self.tvec = self.ids = self.keys = self.okeys = self.packed = None
        self.short = self.boiler = None
        self.sims = {}
        self.version = next(_VERSIONS)  # unique across items: a re-added article never matches old entries


@dataclass(slots=True)
class _StoryState:
    id: int
    members: list[int] = field(default_factory=list)  # every article id
    reps: list[int] = field(default_factory=list)  # non-duplicate, non-round-up members
    roundup: bool = False


@dataclass(slots=True)
class Counters:
    """Work done, to show that the cost per article does not grow with the archive."""

    articles: int = 0
    dup_candidates: int = 0
    story_candidates: int = 0
    similarity_evals: int = 0


class Engine:
    def __init__(self, params: Params | None = None, df: dict[str, int] | None = None, n_docs: int = 0):
        self.p = params or Params()
        self.df: Counter[str] = Counter(df or {})
        self.n_docs = n_docs
        self.df_delta: Counter[str] = Counter()  # what this engine added, for the store
        self.docs_delta = 0
        # This batch's own counts: evidence is weighed by what the store knew before the batch.
        self._batch_df: Counter[str] = Counter()
        self._batch_n = 0
        self._prior_cache: dict[str, dict[str, float]] = {}
        self.items: dict[int, _Item] = {}
        self.stories: dict[int, _StoryState] = {}
        self.merges: list[tuple[int, int]] = []  # (absorbed, survivor), for the store to apply
        self.counters = Counters()
        self._lsh: dict[tuple[int, bytes], list[int]] = defaultdict(list)
        self._titles: dict[str, list[int]] = defaultdict(list)
        # line key -> {dup root: articles holding it}; a line several roots hold is boilerplate.
        self._line_roots: dict[int, dict[int, int]] = defaultdict(dict)
        self._outlet_line_roots: dict[tuple[str, int], dict[int, int]] = defaultdict(dict)
        self._root_members: dict[int, list[int]] = defaultdict(list)
        self._outlet_pages: Counter[str] = Counter()  # pages held per outlet: is its frame known yet?
        # Per outlet: first copies held and how many of their titles hold each word (house vocabulary).
        self._outlet_roots: Counter[str] = Counter()
        self._outlet_words: dict[str, Counter[str]] = defaultdict(Counter)
        # (outlet, title character n-gram) -> root articles whose title has it.
        self._outlet_grams: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._term_index: dict[str, list[int]] = defaultdict(list)
        self._root_ts: list[float] = []  # sorted publication times of first copies: how full the window is
        self._next_provisional = -1
        # (vector part, term) -> column, for the vectorised similarity; a scratch row for the query.
        self._term_ids: dict[tuple[int, str], int] = {}
        self._dense = np.zeros(0)
        self._last_candidates: list[int] = []

    # ---------------------------------------------------------------- public

    def add(self, doc: Doc) -> Assignment:
        return self.add_batch([doc])[0]

    def add_batch(self, docs: list[Doc]) -> list[Assignment]:
        """Fold a batch into duplicate groups and stories, in three steps.

        Duplicates first, one article after the other; then every new page's lines and title
        are registered, so boilerplate shared by pages of this batch is known before any of
        them is compared; then stories, one article after the other, in batch order.
        """
        items: list[_Item] = []
        self._batch_df, self._batch_n = Counter(), 0
        for doc in docs:
            if doc.id in self.items:
                self.remove(doc.id)  # an edited article is decided afresh
            self.counters.articles += 1
            it = self._make_item(doc)
            # An edited first copy whose copies are still here stays their group's first copy.
            match = None if self._root_members.get(doc.id) else self._find_duplicate(it)
            if match is not None:
                # The group's first copy may have left the window already: the group keeps its id.
                it.root, it.match = self.items[match].root, match
            self._insert_page(it)
            items.append(it)
        for it in items:
            if it.root == it.id:
                self._count_terms(it)
                self._register_outlet(it)
        out: list[Assignment] = []
        for it in items:
            self._last_candidates = []
            best = None
            if it.root != it.id:
                src = self.items.get(it.root) or self.items.get(it.match)
                # Only an edit later in this batch can take the copy's source away: a story of its own.
                it.story = src.story if src is not None and src.story else self._new_story()
            else:
                best = None if it.roundup else self._best_story(it)
                it.story = best if best is not None else self._new_story()
            self._insert_story(it)
            # Alone in a new story, its link to each candidate is the score that fell short of
            # the bar already: a merge can only follow a join (unless merging asks for less).
            if (it.root == it.id and not it.roundup and self.p.merge
                    and (best is not None or self._merge_bar < self.p.similarity)):
                self._merge_around(it)
        for it in items:  # merges may have moved earlier ones
            out.append(Assignment(it.id, it.story, None if it.root == it.id else it.root,
                                  _arr(it.sig_arr).tolist()))
        return out

    def restore(self, doc: Doc, story: int, duplicate_of: int | None, sig: list[int] | None) -> None:
        """Put an already-assigned article back (state loaded from the store); nothing is decided."""
        if doc.id in self.items:
            self.remove(doc.id)
        it = self._make_item(doc, sig)
        if duplicate_of is not None:
            root = self.items.get(duplicate_of)
            # A first copy older than the restored window keeps its id: later copies join its group.
            it.root = root.root if root is not None else duplicate_of
        it.story = story
        self._insert_page(it)
        if it.root == it.id:
            self._register_outlet(it)
        self._insert_story(it)

    def remove(self, article_id: int, _bulk: set[tuple[str, object]] | None = None) -> None:
        """Forget one article. With ``_bulk``, the long shared lists (buckets, term index, title
        n-grams) are only noted there, to be pruned once for a whole eviction."""
        it = self.items.pop(article_id, None)
        if it is None:
            return
        if _bulk is None:
            for band in it.bands:
                _discard(self._lsh.get(band), it.id)
            for t in it.top:
                _discard(self._term_index.get(t), it.id)
            for g in it.grams:
                _discard(self._outlet_grams.get((it.source, g)), it.id)
        else:
            _bulk.update(("lsh", band) for band in it.bands)
            _bulk.update(("term", t) for t in it.top)
            _bulk.update(("gram", (it.source, g)) for g in it.grams)
        for tkey in _title_index_keys(it.title_key):
            _discard(self._titles.get(tkey), it.id)
        for k in {k for k, _ in it.lines}:
            _uncount_root(self._line_roots, k, it.root)
            _uncount_root(self._outlet_line_roots, (it.outlet, k), it.root)
        _discard(self._root_members.get(it.root), it.id)
        if it.root == it.id:
            k = bisect.bisect_left(self._root_ts, it.ts)
            if k < len(self._root_ts) and self._root_ts[k] == it.ts:
                del self._root_ts[k]
        self._outlet_pages[it.outlet] -= 1
        if it.root == it.id and it.outlet and not it.roundup:
            self._outlet_roots[it.source] -= 1
            words = self._outlet_words[it.source]
            words.subtract(_page_words(it))
            if not self._outlet_roots[it.source]:
                del self._outlet_words[it.source], self._outlet_roots[it.source]
        st = self.stories.get(it.story)
        if st:
            _discard(st.members, it.id)
            _discard(st.reps, it.id)
            if not st.members:
                del self.stories[st.id]

    def rename_story(self, old: int, new: int) -> None:
        """Give a provisional story (negative id) the id the store assigned."""
        st = self.stories.pop(old)
        st.id = new
        self.stories[new] = st
        for aid in st.members:
            if aid in self.items:
                self.items[aid].story = new
        self.merges = [(new if a == old else a, new if b == old else b) for a, b in self.merges]

    def evict_before(self, ts: float) -> int:
        """Forget articles published before ``ts`` (outside every future window)."""
        old = [i for i, it in self.items.items() if it.ts < ts]
        touched: set[tuple[str, object]] = set()
        for aid in old:
            self.remove(aid, touched)
        # Each long list is filtered once, not once per evicted article (that was quadratic).
        indexes: dict[str, dict[Any, list[int]]] = {
            "lsh": self._lsh, "term": self._term_index, "gram": self._outlet_grams}
        for kind, key in touched:
            index = indexes[kind]
            lst = index.get(key)
            if lst is not None:
                live = [a for a in lst if a in self.items]
                if live:
                    index[key] = live
                else:
                    del index[key]
        if len(self._term_ids) > 50_000 + 200 * len(self.items):
            # Columns of words no live article holds any more: number the live ones afresh.
            self._term_ids, self._dense = {}, np.zeros(0)
            for it in self.items.values():
                it.packed = None
        return len(old)

    def check(self) -> list[str]:
        """Broken invariants of the in-memory state (empty when consistent); for tests and debugging.

        Every index may only name live articles (after an eviction has pruned them), every article
        sits in exactly the story it names, and the per-line and per-outlet counts match the articles.
        """
        bad: list[str] = []
        items = self.items
        for aid, it in items.items():
            st = self.stories.get(it.story)
            if it.story == 0 or st is None or aid not in st.members:
                bad.append(f"article {aid} names story {it.story}, which does not hold it")
            root = items.get(it.root)
            if root is not None and root.root != root.id:
                bad.append(f"article {aid}: its group's first copy {it.root} is itself a copy")
        for sid, st in self.stories.items():
            if not st.members:
                bad.append(f"story {sid} is empty")
            for aid in st.members:
                if aid not in items or items[aid].story != sid:
                    bad.append(f"story {sid} holds article {aid}, which is elsewhere or gone")
            if not set(st.reps) <= set(st.members):
                bad.append(f"story {sid}: a representative is not a member")
        indexes: dict[str, Any] = {"lsh": self._lsh, "titles": self._titles, "terms": self._term_index,
                                   "grams": self._outlet_grams, "root members": self._root_members}
        for name, index in indexes.items():
            for key, ids in index.items():
                gone = [a for a in ids if a not in items]
                if gone:
                    bad.append(f"{name} index {key!r} names evicted articles {gone[:3]}")
        lines: dict[int, Counter[int]] = defaultdict(Counter)
        for it in items.values():
            for k in {k for k, _ in it.lines}:
                lines[k][it.root] += 1
        held = {k: Counter(v) for k, v in self._line_roots.items()}
        if held != {k: v for k, v in lines.items()}:
            bad.append("line counts differ from the articles' lines")
        pages = Counter(it.outlet for it in items.values())
        if +self._outlet_pages != pages:
            bad.append("pages per outlet differ from the articles")
        return bad

    def headline(self, story: int) -> int | None:
        """The member closest to the others (the story's medoid); the earliest on ties."""
        st = self.stories.get(story)
        if not st:
            return None
        reps = [a for a in st.reps if a in self.items] or [a for a in st.members if a in self.items]
        reps = sorted(reps)[-self.p.max_members :]
        if len(reps) <= 2:
            return reps[0] if reps else None
        best, best_score = reps[0], -1.0
        for a in reps:
            score = sum(self._sim(self.items[a], self.items[b]) for b in reps if b != a)
            if score > best_score + 1e-12:
                best, best_score = a, score
        return best

    # --------------------------------------------------------------- features

    def _make_item(self, doc: Doc, sig: list[int] | None = None) -> _Item:
        f = doc.features
        if f is None or (f.sig is None and sig is None):
            f = F.extract(doc.title, doc.body, doc.outlet, template_gram=TEMPLATE_GRAM,
                          signature=sig is None)
        signature = sig if sig is not None else f.sig
        assert signature is not None
        return _Item(
            id=doc.id,
            outlet=doc.outlet or "",
            source=_source(doc.outlet or "", doc.url or ""),
            title=doc.title,
            ts=doc.published_at.timestamp(),
            url=(doc.url or "").rstrip("/"),
            title_key=f.title_key,
            title_line=f.title_line,
            lines=f.lines,
            roundup=f.roundup,
            garbled=f.garbled,
            zh=f.lang == "zh",
            lang=f.lang,
            root=doc.id,
            line_terms=f.line_terms,
            line_names=f.line_names,
            title_terms=f.title_terms,
            title_names=f.title_names,
            grams=f.grams,
            bands=F.bands(signature),
            sig_arr=np.asarray(signature, dtype=np.uint32),
        )

    def _title_terms(self, it: _Item) -> tuple[list[str], list[str]]:
        """Title words with the outlet's template ("… breached accounts", "Agency adds …") left out."""
        if it.tt is None:
            need = self.p.template_titles
            # A phrase, not one word: an outlet that names a vendor in many titles has no
            # template "Microsoft" (an aggregator's three reports of one takedown even less so).
            shared = {g for g in it.grams if _PHRASE_GRAM_RE.search(g)
                      and sum(h != it.id for h in self._outlet_grams.get((it.source, g), ())) >= need}
            if shared and it.outlet:
                title = F.blank_grams(it.title, shared, TEMPLATE_GRAM)
                it.tt = (terms(title, it.lang), name_terms(title))
            else:
                it.tt = (it.title_terms, it.title_names)
        return it.tt

    def _boiler_for_outlet(self, it: _Item) -> set[int]:
        """Lines of ``it`` that also occur in another page (dup group) of the same outlet; kept
        until a line of it becomes boilerplate (``dirty``)."""
        if it.boiler is None:
            out = set()
            for k, _ in it.lines:
                roots = self._outlet_line_roots.get((it.outlet, k))
                if roots and any(r != it.root for r in roots):
                    out.add(k)
            it.boiler = out
        return it.boiler

    def _tf(self, it: _Item, names: bool) -> Counter[str]:
        boiler = self._boiler_for_outlet(it)
        tf: Counter[str] = Counter()  # float counts: title words weigh more
        seen: set[int] = set()
        for (k, _), ts in zip(it.lines, it.line_names if names else it.line_terms, strict=True):
            if k in boiler or k in seen or k == it.title_line:  # the title repeated counts once, below
                continue
            seen.add(k)
            tf.update(ts)
            if len(seen) <= self.p.lede_lines:
                tf.update(ts)
        for t in self._title_terms(it)[1 if names else 0]:
            tf[t] += self.p.title_weight  # type: ignore[assignment]  # Counter of weights
        return tf

    def _count_terms(self, it: _Item) -> None:
        """Rolling document frequencies: each non-duplicate article counts once, before its batch is
        assigned, so the batch's own vocabulary is known."""
        self.n_docs += 1
        self.docs_delta += 1
        self._batch_n += 1
        seen = self._term_set(it)
        self.df.update(seen)  # Counter.update counts in C
        self.df_delta.update(seen)
        self._batch_df.update(seen)

    def _term_set(self, it: _Item) -> set[str]:
        """The article's words, without its outlet's frame (navigation, sidebars of other headlines)."""
        boiler = self._boiler_for_outlet(it)
        seen: set[str] = set(it.title_terms)
        for (k, _), ts in zip(it.lines, it.line_terms, strict=True):
            if k not in boiler:
                seen.update(ts)
        return seen

    def _weigh(self, tf: Counter[str], lang: str, keep: int = 0) -> dict[str, float]:
        if not tf:
            return {}
        names = list(tf)
        # Sublinear tf times idf, in numpy: articles have hundreds of distinct words.
        n = np.fromiter(tf.values(), dtype=np.float64, count=len(names))
        w = (1.0 + np.log(n)) * self._idf(names, lang)
        for i, t in enumerate(names):
            if t[:4] == "cve-" and is_strong_term(t):
                w[i] *= self.p.strong_weight
        # Heaviest first (``_top_terms`` takes the head); ties in the words' order of appearance.
        order = np.argsort(-w, kind="stable")
        if keep:
            order = order[:keep]
        names = [names[i] for i in order]
        w = w[order]
        w = w / (float(np.sqrt(np.dot(w, w))) or 1.0)
        return dict(zip(names, w.tolist(), strict=True))

    def _idf(self, names: list[str], lang: str) -> np.ndarray:
        """How unusual each term is: the share of articles holding it, counted by the store and
        blended with the background prior (worth ``prior_docs`` articles), so a young store already
        knows common words and the prior fades as the store grows."""
        df, k = self.df, self.p.prior_docs
        d = np.fromiter(map(df.get, names, itertools.repeat(0)), dtype=np.float64, count=len(names))
        p0 = self._priors(names, lang)
        return self.p.idf_offset - np.log((d + k * p0 + 0.5) / (self.n_docs + k + 1.0))

    def _priors(self, names: list[str], lang: str) -> np.ndarray:
        """``prior_share`` of each term, remembered per language (it is asked for over and over)."""
        cache = self._prior_cache.get(lang)
        if cache is None or len(cache) > 200_000:
            cache = self._prior_cache[lang] = {}
        for t in set(names).difference(cache):  # the set difference runs in C: most are known
            cache[t] = prior_share(t, lang)
        return np.fromiter(map(cache.__getitem__, names), dtype=np.float64, count=len(names))

    def _vector(self, it: _Item) -> dict[str, float]:
        if it.vec is None:
            it.vec = self._weigh(self._tf(it, names=False), it.lang, self.p.vector_terms)
        return it.vec

    def _name_vector(self, it: _Item) -> dict[str, float]:
        if it.nvec is None:
            it.nvec = self._weigh(self._tf(it, names=True), it.lang)
        return it.nvec

    def _title_vector(self, it: _Item) -> dict[str, float]:
        if it.tvec is None:
            tt, tn = self._title_terms(it)
            it.tvec = self._weigh(Counter(set(tt) | set(tn)), it.lang)
        return it.tvec

    def _keys(self, it: _Item) -> frozenset[str]:
        """Key terms: title words and names, and the top words and names of the text; what a
        same-event check compares."""
        if it.keys is None:
            tt, tn = self._title_terms(it)
            it.keys = frozenset({*tt, *tn, *_top_terms(self._vector(it), self.p.key_terms),
                                 *_top_terms(self._name_vector(it), self.p.top_names)})
        return it.keys

    def _own_keys(self, it: _Item) -> frozenset[str]:
        """Key terms without the title words it shares, as a phrase, with another title of its own
        outlet: two notices of one template ("… 专题会议 | X", "X starred owner/…") share their
        frame, so between pages of one outlet only the rest is evidence."""
        if it.okeys is None:
            shared = {g for g in it.grams
                      if any(h != it.id for h in self._outlet_grams.get((it.source, g), ()))}
            if not shared or not it.outlet:
                it.okeys = self._keys(it)
            else:
                title = F.blank_grams(it.title, shared, TEMPLATE_GRAM)
                kept = {*terms(title, it.lang), *name_terms(title)}
                it.okeys = self._keys(it) - ({*it.title_terms, *it.title_names} - kept)
        return it.okeys

    def _topic(self, term: str, story: int, ts: float) -> bool:
        """A term the window's other stories also lead with is this week's topic (a hot product,
        a vendor in the news), not one event's name."""
        if not self.p.topic_stories:
            return False
        win = self.p.window_seconds
        others = {o.story for a in self._term_index.get(term, ())
                  if (o := self.items.get(a)) is not None and o.story != story and abs(o.ts - ts) <= win}
        return len(others) >= self.p.topic_stories

    def _story_titles(self, st: _StoryState, ts: float) -> set[str]:
        out: set[str] = set()
        for a in self._recent_reps(st, ts):
            out.update(self._title_terms(self.items[a])[0])
        return out

    def _surprise(self, shared: list[str], lang: str, core: Counter[str]) -> np.ndarray:
        """How unusual each shared term is (nats), by what the store knew before this batch (a young
        store's batch is mostly the news it is sorting) with the story's own reports counted as one:
        an event's name is no less distinctive for having twenty reports."""
        df, bdf, k = self.df, self._batch_df, self.p.evidence_prior_docs
        d = np.fromiter((max(0, df.get(t, 0) - bdf.get(t, 0) - core[t] + 1) for t in shared),
                        dtype=np.float64, count=len(shared))
        p0 = self._priors(shared, lang)
        n = self.n_docs - self._batch_n
        return -np.log((d + k * p0 + 0.5) / (n + k + 1.0))

    def _short(self, it: _Item) -> bool:
        """Little text of its own beside the title (a feed line, an empty page): its words are
        mostly the title's."""
        if it.short is None:
            boiler = self._boiler_for_outlet(it)
            own: set[str] = set()
            for (k, _), ts in zip(it.lines, it.line_terms, strict=True):
                if k not in boiler and k != it.title_line:
                    own.update(ts)
            it.short = len(own) < self.p.short_terms
        return it.short

    def _concepts(self, it: _Item, terms_: set[str]) -> int:
        """How many separate things ``terms_`` name: words side by side in the title are one name
        (北风 机器人, Cisco ISE), every other word counts on its own."""
        title = self._slots(it)
        runs, prev = 0, False
        for t in title:
            hit = t in terms_
            runs += hit and not prev
            prev = hit
        return runs + len(terms_ - set(title))

    def _beside(self, it: _Item, terms_: set[str]) -> set[str]:
        """Title terms standing right next to one of ``terms_`` in the article's title."""
        slots = self._slots(it)
        out: set[str] = set()
        for i, t in enumerate(slots):
            if t in terms_:
                near = (slots[i - 1] if i else None, slots[i + 1] if i + 1 < len(slots) else None)
                out.update(x for x in near if x is not None)
        return out

    def _slots(self, it: _Item) -> list[str | None]:
        if it.slots is None:
            it.slots = term_slots(it.title, it.lang)
        return it.slots

    def _focused_id(self, it: _Item, shared: set[str]) -> bool:
        """A CVE id among ``shared`` while the article names few of them (not a bulletin)."""
        if not any(is_strong_term(t) for t in shared):
            return False
        return sum(is_strong_term(t) for t in self._ids(it)) <= self.p.id_focus

    def _house_word(self, outlet: str, term: str, pages: int) -> bool:
        """A word on a good share of the outlet's pages (its own name, its product, its column,
        its boilerplate), once it has ``pages`` pages: the outlet's vocabulary, no evidence."""
        n = self._outlet_roots[outlet]
        return n >= pages and self._outlet_words[outlet][term] >= max(pages, self.p.house_share * n)

    def _population(self, ts: float) -> int:
        """Articles (first copies) within the window around ``ts``, this batch's included: how many
        an article could meet by coincidence."""
        win = self.p.population_hours * 3600.0
        return bisect.bisect_right(self._root_ts, ts + win) - bisect.bisect_left(self._root_ts, ts - win)

    def _ids(self, it: _Item) -> frozenset[str]:
        """Identifiers that name one thing: CVE ids among its top words, versions and update
        numbers in its title ("Tor Browser 13.5.7", "KB5044284"), each tagged with its kind."""
        if it.ids is None:
            ids = {t for t in self._vector(it) if is_strong_term(t)}
            ids.update(f"v:{m.group(0).lower()}" for m in _VERSION_RE.finditer(it.title))
            ids.update(f"kb:{m.group(1)}" for m in _KB_RE.finditer(it.title))
            it.ids = frozenset(ids)
        return it.ids

    def _conflict(self, it: _Item, st: _StoryState) -> bool:
        """Two incidents of one vendor, two releases of one product: the article and the story
        both name identifiers of a kind and share none of any kind. Or two vendors' flaws: the
        article's title names companies or products and the story's titles name none of them."""
        if self.p.title_name_conflict:
            names = _title_names(it)
            if names:
                theirs_names: set[str] = set()
                for a in self._recent_reps(st, it.ts):
                    theirs_names |= _title_names(self.items[a])
                if theirs_names and not names & theirs_names:
                    return True
        mine = self._ids(it)
        if not mine:
            return False
        if self._id_clash(self._keys(it), self._story_ids(st)):
            return True
        theirs: set[str] = set()
        for a in self._recent_reps(st, it.ts):
            theirs |= self._ids(self.items[a])
        if not theirs or mine & theirs:
            return False
        # Only between focused reports: a bulletin listing dozens of CVEs names no one incident.
        mine_kinds = Counter(_id_kind(t) for t in mine)
        their_kinds = Counter(_id_kind(t) for t in theirs)
        most = self.p.id_focus
        return any(n <= most and 0 < their_kinds[k] <= most for k, n in mine_kinds.items())

    def _story_ids(self, st: _StoryState) -> set[str]:
        """The CVE ids at least half of a story's members still held name: what the story is about
        (a page listing a whole advisory bundle does not make every flaw in it the story's). Not
        only the recent ones: a story must not drift to another flaw through pages naming none."""
        reps = [a for a in st.reps if a in self.items][-self.p.max_members:]
        held: Counter[str] = Counter()
        for a in reps:
            held.update(t for t in self._keys(self.items[a]) if is_strong_term(t))
        need = (len(reps) + 1) // 2
        return {t for t, n in held.items() if n >= need}

    def _id_clash(self, a: Iterable[str], b: Iterable[str]) -> bool:
        """Two sets of terms (an article's keys, a story's ids) that each name a few CVE ids and
        share none: two flaws, two events, even when one page of the story also cited the other."""
        ca = {t for t in a if is_strong_term(t)}
        cb = {t for t in b if is_strong_term(t)}
        return 0 < len(ca) <= self.p.id_focus and 0 < len(cb) <= self.p.id_focus and not ca & cb

    # ------------------------------------------------------------- duplicates

    def _find_duplicate(self, it: _Item) -> int | None:
        cands: set[int] = set()
        for band in it.bands:
            cands.update(self._lsh.get(band, ()))
        if _specific(it.title_key):
            for tkey in _title_index_keys(it.title_key):
                cands.update(self._titles.get(tkey, ()))
        win = self.p.dup_window_hours * 3600.0

        live = sorted(c for c in cands if (o := self.items.get(c)) is not None and abs(o.ts - it.ts) <= win)
        if not live:
            return None
        others = [self.items[c] for c in live]
        # Equal titles first, then text overlap, then title overlap: pages sharing one site
        # frame all tie on text, and the copy is the one whose title matches. Signature
        # agreement for all candidates at once; title overlap only where it decides the cut.
        hits = (np.stack([_arr(o.sig_arr) for o in others]) == it.sig_arr).sum(axis=1).tolist()
        n = F.NUM_PERM
        keys = [(o.title_key != it.title_key, -round(h / n, 2)) for o, h in zip(others, hits, strict=True)]
        k = self.p.max_candidates
        pick: list[int] | range = range(len(live))
        if len(live) > k:
            cut = sorted(keys)[k - 1]
            pick = [i for i, key in enumerate(keys) if key <= cut]
        ranked = sorted(pick, key=lambda i: (*keys[i], -self._title_sim(it, others[i]), live[i]))[:k]
        self.counters.dup_candidates += len(ranked)
        best: tuple[float, int] | None = None
        for i in ranked:
            other = others[i]
            score = self._dup_score(it, other)
            if score is not None and (best is None or score > best[0]):
                best = (score, other.id)
        return best[1] if best else None

    @staticmethod
    def _title_sim(a: _Item, b: _Item) -> float:
        """Character 3-gram containment of the shorter title key in the longer (0..1)."""
        if a.tgrams is None:
            a.tgrams = F.title_trigrams(a.title_key)
        if b.tgrams is None:
            b.tgrams = F.title_trigrams(b.title_key)
        if not a.tgrams or not b.tgrams:
            return 0.0
        return len(a.tgrams & b.tgrams) / min(len(a.tgrams), len(b.tgrams))

    def _one_page(self, a: _Item, b: _Item) -> bool:
        """Titles alike but for a word or two, with the same numbers (advisory 2024-7811 is not
        2024-7812), or one address under related titles (a feed announcing one page twice)."""
        sim = self._title_sim(a, b)
        if a.url and a.url == b.url and sim >= self.p.dup_title_similarity and _names_in_slug(a, b):
            return True
        return sim >= self.p.dup_same_outlet_title and _DIGITS_RE.findall(a.title_key) == _DIGITS_RE.findall(
            b.title_key)

    def _distinctive(self, x: _Item, root: int, new_id: int) -> np.ndarray:
        """Shingles of ``x``'s text without lines some other page (not of dup group ``root``) has."""
        keep: list[int] = []
        for i, (k, _) in enumerate(x.lines):
            if k == x.title_line:
                continue  # the title repeated as a heading: titles are compared on their own
            roots = self._line_roots.get(k)
            if roots and (len(roots) > 2 or any(r != root and r != new_id for r in roots)):
                continue  # boilerplate (navigation, footers), not evidence of copying
            keep.append(i)
        key = tuple(keep)
        if x.shingle_key != key or x.shingles is None:
            # Code points are not kept: a page's shingles are cut again only when its frame changes.
            codes = (np.concatenate([F.line_codes(x.lines[i][1]) for i in keep]) if keep
                     else np.empty(0, np.uint32))
            x.shingle_key, x.shingles = key, F.shingle_hashes(codes)
        return x.shingles

    def _dup_score(self, a: _Item, b: _Item) -> float | None:
        """Containment of the shorter text once lines shared with other pages are left out."""
        same_title = _specific(a.title_key) and a.title_key == b.title_key
        if (a.roundup or b.roundup) and not (same_title or self._one_page(a, b)):
            return None  # one site's daily digests can share a whole page; only the same issue is a copy
        if (a.garbled or b.garbled) and F.norm_line(a.title) == F.norm_line(b.title):
            return 0.5  # the text no longer reads (bad decoding); an identical title is all there is
        sa = self._distinctive(a, b.root, a.id)
        sb = self._distinctive(b, b.root, a.id)
        small = min(len(sa), len(sb))
        if small < self.p.dup_min_shingles:
            # Too little text of its own: only agreeing titles (or one address), with what text there
            # is agreeing, decide.
            if ((same_title or self._one_page(a, b))
                    and (not len(sa) or not len(sb) or F.overlap(sa, sb) / max(1, small) >= 0.5)):
                return 0.5
            return None
        ratio = small / max(len(sa), len(sb))
        if ratio < self.p.dup_length_ratio:
            return None
        # A line is known as a site's frame once two other pages hold it: on a site's second
        # page, the frame looks like shared text, and only an equal title makes a copy. A copy
        # group holding a page of this outlet counts as the outlet's own (an aggregator's mirror
        # of the site's first page carries the site's frame too).
        same_outlet = a.outlet == b.outlet or any(
            self.items[m].outlet == a.outlet for m in self._root_members.get(b.root, ()) if m in self.items)
        frame_known = not same_outlet or self._outlet_pages[a.outlet] >= 2
        if same_title:
            need = self.p.dup_containment
        elif not frame_known:
            return None
        elif same_outlet:
            # One outlet's own pages under different titles are different pages (a series' episodes,
            # one template's notices, a site that shows one page under many links), unless they are
            # one address, the title was barely touched, or a long text of its own is all but
            # identical under a related title (the outlet re-posted its article).
            if self._one_page(a, b):
                need = self.p.dup_retitled_containment
            elif small >= self.p.dup_copy_shingles and self._title_sim(a, b) >= self.p.dup_reposted_title:
                need = self.p.dup_reposted_containment
            else:
                return None
        elif self._title_sim(a, b) >= self.p.dup_title_similarity or small >= self.p.dup_copy_shingles:
            # Another outlet sharing this much text copied it, whatever its title says (an
            # advisory re-posted by a list); one outlet's pages can share a sidebar of headlines.
            need = self.p.dup_retitled_containment
        else:
            return None  # copies keep their title; pages sharing only a site's frame do not
        containment = F.overlap(sa, sb) / small
        return containment if containment >= need else None

    # ----------------------------------------------------------------- stories

    def _new_story(self) -> int:
        sid = self._next_provisional
        self._next_provisional -= 1
        return sid

    def _recent_reps(self, st: _StoryState, ts: float) -> list[int]:
        win = self.p.window_seconds
        reps = [a for a in st.reps if a in self.items and abs(self.items[a].ts - ts) <= win]
        return reps[-self.p.max_members :]

    def _best_story(self, it: _Item) -> int | None:
        win = self.p.window_seconds
        cand_stories: set[int] = set()
        for t in self._index_terms(it):
            for aid in self._term_index.get(t, ()):
                other = self.items.get(aid)
                if other is not None and abs(other.ts - it.ts) <= win:
                    cand_stories.add(other.story)
        self.counters.story_candidates += len(cand_stories)
        self._last_candidates = sorted(cand_stories)
        groups: list[tuple[int, int]] = []  # (story, how many reps), in candidate order
        others: list[_Item] = []
        for sid in self._last_candidates:
            st = self.stories.get(sid)
            if st is None or st.roundup:
                continue
            reps = self._recent_reps(st, it.ts)
            if reps:
                groups.append((sid, len(reps)))
                others.extend(self.items[a] for a in reps)
        self.counters.similarity_evals += len(others)
        flat = self._sims(it, others)  # one vectorised pass over every candidate's members
        close: list[tuple[float, int]] = []
        at = 0
        for sid, k in groups:
            sims = flat[at : at + k]
            at += k
            if self.p.link_top:
                sims = sorted(sims, reverse=True)[: self.p.link_top]
            score = sum(sims) / len(sims)
            if score < self.p.similarity * self.p.merge_reach:
                # Too far from the article for its story to link well with this one after a join.
                self._last_candidates.remove(sid)
            if score >= self.p.similarity:
                close.append((score, sid))
        # The closest story that shares evidence of this very event; topical closeness alone is not.
        for score, sid in sorted(close, key=lambda x: (-x[0], x[1])):
            st = self.stories[sid]
            own = all(self.items[a].source == it.source for a in st.reps)
            keys = self._own_keys(it) if own else self._keys(it)
            if self._same_event(it, keys, st, score, own=own, short=self._short(it)) \
                    and not self._conflict(it, st):
                return sid
        return None

    def _same_event(self, it: _Item, keys: frozenset[str], st: _StoryState, score: float, *,
                    own: bool, short: bool) -> bool:
        """Whether an article (its ``keys``) close to story ``st`` by ``score`` reports that event."""
        bar = self._evidence_bar(score)
        if own:
            # One outlet's pages share its house vocabulary and pet topics: ask more of them.
            bar += self.p.same_outlet_evidence
        # Near the bar, one name in common is a topic (a vendor, a brand): an event also shares
        # what happened. A report much closer than that may share just the name; where one side
        # is a title alone (its closeness is that of a few words), only three times the bar is.
        theirs = all(self._short(self.items[a]) for a in st.reps if a in self.items)
        if self.p.short_terms <= 0 or not (short or theirs):
            margin = self.p.one_name_margin
        elif short and theirs:
            margin = math.inf  # two headlines alone: one name is all their closeness is
        else:
            margin = self.p.short_one_name_margin
        close_enough = score >= self.p.similarity + margin
        need = 1 if close_enough else self.p.min_shared_terms
        return self._story_evidence(it, keys, st, own=own, need_terms=need) >= bar

    def _evidence_bar(self, score: float) -> float:
        """Nats of evidence asked of a join: less the closer the texts (a report this close that
        shares one rare name is that event), more near the similarity bar."""
        return max(self.p.evidence_floor,
                   self.p.evidence - self.p.evidence_per_sim * (score - self.p.similarity) / 0.1)

    def _core(self, st: _StoryState, ts: float, own: bool = False) -> Counter[str]:
        """A story's key terms that a good part of its recent members share (all of them, for one
        or two), each with how many members hold it; ``own``: without their outlet's title frames."""
        return self._core_holders(st, ts, own)[0]

    def _core_holders(self, st: _StoryState, ts: float, own: bool = False
                      ) -> tuple[Counter[str], dict[str, set[str]]]:
        """``_core``, and for each core term the sources of the members holding it."""
        key = self._own_keys if own else self._keys
        reps = [self.items[a] for a in self._recent_reps(st, ts)]
        held: Counter[str] = Counter()
        for r in reps:
            held.update(key(r))
        need = 1 if len(reps) <= 2 else max(2, len(reps) // 4)
        core = Counter({t: n for t, n in held.items() if n >= need})
        holders: dict[str, set[str]] = defaultdict(set)
        for r in reps:
            for t in key(r) & core.keys():
                holders[t].add(r.source)
        return core, holders

    def _story_evidence(self, it: _Item, keys: frozenset[str], st: _StoryState, own: bool = False,
                        need_terms: int = 1) -> float:
        """Surprise (nats) of the key terms shared with a story's core, less the log of how many
        articles the window holds: in a dense feed more coincidences happen, so more is asked. A
        term counts as rare as it would be if the story's own reports were one: an event's name
        is no less distinctive for having twenty reports."""
        core, holders = self._core_holders(st, it.ts, own)
        # Between one source's own pages its vocabulary shows sooner (a company's press releases).
        pages = self.p.house_min_own if own else self.p.house_min_titles
        # A word is no evidence when it is the article's outlet's vocabulary, or that of every
        # outlet in the story that holds it; one outlet's sidebar naming a story does not mute it.
        shared = sorted(t for t in keys
                        if t in core and not self._house_word(it.source, t, pages)
                        and not all(self._house_word(o, t, pages) for o in holders[t]))
        if len(shared) < need_terms:
            return -math.inf
        surprise = self._surprise(shared, it.lang, core)
        # Telling: unusual, not a genre word, and either in both titles or rare in general language.
        titled = set(self._title_terms(it)[0]) & self._story_titles(st, it.ts)
        topics = {t for t in shared if self._topic(t, st.id, it.ts)}
        telling = {t for t, x in zip(shared, surprise.tolist(), strict=True)
                   if x >= self.p.shared_term_nats and not is_genre(t)
                   and (t in titled or prior_share(t, it.lang) <= self.p.telling_prior)
                   and t not in topics}
        if topics and telling:
            # The rest of a topic's name is the topic too: "Networks" beside "Palo Alto".
            telling -= self._beside(it, topics)
        # One shared word, however rare, is a topic (the company, the product) between reports in
        # one language; across languages the names are all that can be shared.
        across = any(self.items[a].zh != it.zh for a in st.reps if a in self.items)
        least = 1 if across else self.p.min_shared_words
        concepts = self._concepts(it, telling)
        if concepts < need_terms and self._focused_id(it, telling):
            # One flaw's identifier, in a report about few flaws: that flaw is what happened.
            concepts = need_terms
        if concepts < need_terms or len(shared) < least:
            return -math.inf
        return float(surprise.sum()) - math.log1p(self._population(it.ts))

    def _index_terms(self, it: _Item) -> list[str]:
        """Top words plus top Latin names: names are how a Chinese report finds an English one."""
        top = _top_terms(self._vector(it), self.p.top_terms)
        names = [t for t in _top_terms(self._name_vector(it), self.p.top_names) if t not in top]
        return top + names

    def _sim(self, a: _Item, b: _Item) -> float:
        return self._sims(a, [b])[0]

    def _sims(self, a: _Item, others: list[_Item]) -> list[float]:
        """Similarity of ``a`` to each of ``others``: remembered pairs first (average links ask
        for the same pairs article after article), the rest in one vectorised pass."""
        out = [0.0] * len(others)
        miss: list[int] = []
        for i, b in enumerate(others):
            hi, lo = (a, b) if a.id > b.id else (b, a)
            hit = hi.sims.get(lo.id)
            if hit is not None and hit[0] == lo.version:
                out[i] = hit[1]
            else:
                miss.append(i)
        if miss:
            for i, s in zip(miss, self._blend(a, [others[i] for i in miss]), strict=True):
                b = others[i]
                s = self._adjust(a, b, s)
                hi, lo = (a, b) if a.id > b.id else (b, a)
                hi.sims[lo.id] = (lo.version, s)
                out[i] = s
        return out

    def _blend(self, a: _Item, others: list[_Item]) -> list[float]:
        """Blend of three cosines (all words, Latin names, titles) as one sparse dot product:
        each item's three unit vectors sit side by side in one term space, ``a``'s scaled by
        their shares."""
        ia, wa = self._packed(a, scaled=True)
        packs = [b.packed or self._pack(b) for b in others]
        idx = np.concatenate([p[0] for p in packs])
        if not len(ia) or not len(idx):
            return [0.0] * len(others)
        buf = self._dense
        if len(buf) < len(self._term_ids):
            buf = self._dense = np.zeros(2 * len(self._term_ids) + 1024)
        buf[ia] = wa
        prod = buf[idx] * np.concatenate([p[1] for p in packs])
        buf[ia] = 0.0
        ends = np.cumsum([len(p[0]) for p in packs])
        totals = np.concatenate(([0.0], np.cumsum(prod)))
        starts = np.concatenate(([0], ends[:-1]))
        return (totals[ends] - totals[starts]).tolist()

    def _adjust(self, a: _Item, b: _Item, s: float) -> float:
        """Language, outlet, time and identifier adjustments of a blended similarity."""
        if a.zh != b.zh:
            # Chinese and English reports share only names: rescaled when those names are distinctive.
            strong = _dot(self._name_vector(a), self._name_vector(b)) >= self.p.cross_lang_names
            s = min(1.0, s * (self.p.cross_lang_scale if strong else self.p.cross_lang_weak_scale))
        if a.outlet and a.source == b.source:
            s *= self.p.same_outlet_scale
        if self.p.time_decay:
            days = max(0.0, abs(a.ts - b.ts) / 86400.0 - 1.0)
            s *= max(0.0, 1.0 - self.p.time_decay * days)
        ia, ib = self._ids(a), self._ids(b)
        if ia and ib and not ia & ib:
            s *= self.p.id_conflict_scale
        return s

    def _packed(self, it: _Item, scaled: bool) -> tuple[np.ndarray, np.ndarray]:
        p = it.packed or self._pack(it)
        return (p[0], p[2]) if scaled else (p[0], p[1])

    def _pack(self, it: _Item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Term ids, weights and share-scaled weights of the three vectors side by side."""
        ids: list[int] = []
        vals: list[float] = []
        shares: list[float] = []
        wn, wt = self.p.name_share, self.p.title_share
        tid = self._term_ids
        for seg, vec, share in ((0, self._vector(it), 1 - wn - wt), (1, self._name_vector(it), wn),
                                (2, self._title_vector(it), wt)):
            for term, w in vec.items():
                key = (seg, term)
                k = tid.get(key)
                if k is None:
                    k = tid[key] = len(tid)
                ids.append(k)
                vals.append(w)
                shares.append(share)
        v = np.array(vals)
        it.packed = (np.array(ids, dtype=np.int64), v, v * np.array(shares))
        return it.packed

    def _link(self, a: _StoryState, b: _StoryState, ts: float) -> float:
        """Average link between two stories' recent representative members."""
        ra, rb = self._recent_reps(a, ts), self._recent_reps(b, ts)
        if not ra or not rb:
            return 0.0
        self.counters.similarity_evals += len(ra) * len(rb)
        others = [self.items[y] for y in rb]
        total = sum(sum(self._sims(self.items[x], others)) for x in ra)
        return total / (len(ra) * len(rb))

    def _merge_around(self, it: _Item) -> None:
        """Two halves of one story that grew apart join once their average link clears the bar."""
        while True:
            st = self.stories[it.story]
            best: tuple[float, int] | None = None
            ids = self._story_ids(st)
            for sid in self._last_candidates:
                other = self.stories.get(sid)
                if (other is None or sid == st.id or other.roundup
                        or self._id_clash(ids, self._story_ids(other))):
                    continue
                score = self._link(st, other, it.ts)
                if score < self._merge_bar or (best is not None and score <= best[0]):
                    continue
                # Two stories that each passed the same-event check link through their cores; one
                # telling word in common is enough when they link well (the halves of one event
                # share its name), two near the bar (two events of one hot name link too).
                need = 1 if score >= self._merge_bar + self.p.one_name_margin / 2 else self.p.min_shared_terms
                # Both stories one source's pages: its frames are no evidence, and it asks more.
                own = all(self.items[a].source == it.source for a in (*st.reps, *other.reps)
                          if a in self.items)
                bar = self._evidence_bar(score) + (self.p.same_outlet_evidence if own else 0.0)
                core = frozenset(self._core(st, it.ts, own))
                if self._story_evidence(it, core, other, own=own, need_terms=need) >= bar:
                    best = (score, sid)
            if best is None:
                return
            self._merge(st.id, best[1])

    @property
    def _merge_bar(self) -> float:
        return self.p.merge_similarity or self.p.similarity

    def _merge(self, a: int, b: int) -> None:
        sa, sb = self.stories[a], self.stories[b]
        # The story first seen survives (ties: lower id), so ids stay stable for what was sent.
        keep, gone = (sa, sb) if (min(sa.members), sa.id) <= (min(sb.members), sb.id) else (sb, sa)
        for aid in gone.members:
            if aid in self.items:
                self.items[aid].story = keep.id
        keep.members = sorted(keep.members + gone.members)
        keep.reps = sorted(keep.reps + gone.reps)
        del self.stories[gone.id]
        self._last_candidates = [keep.id if s == gone.id else s for s in self._last_candidates]
        self.merges.append((gone.id, keep.id))

    # ------------------------------------------------------------------ index

    def _insert_page(self, it: _Item) -> None:
        """Duplicate-detection structures: LSH buckets, titles, which pages hold which lines."""
        self.items[it.id] = it
        for band in it.bands:
            self._lsh[band].append(it.id)
        if _specific(it.title_key):
            for tkey in _title_index_keys(it.title_key):
                self._titles[tkey].append(it.id)
        self._root_members[it.root].append(it.id)
        if it.root == it.id:
            bisect.insort(self._root_ts, it.ts)
        self._outlet_pages[it.outlet] += 1
        for k in {k for k, _ in it.lines}:
            roots = self._line_roots[k]
            roots[it.root] = roots.get(it.root, 0) + 1
            oroots = self._outlet_line_roots[(it.outlet, k)]
            if it.root not in oroots and len(oroots) == 1:
                # The line just became boilerplate for the pages already holding it.
                for r in oroots:
                    self._dirty_root(r)
            oroots[it.root] = oroots.get(it.root, 0) + 1

    def _register_outlet(self, it: _Item) -> None:
        """The outlet's title n-grams, whose repeats are its title template, and its title words."""
        if not it.outlet or it.roundup:
            return
        self._outlet_roots[it.source] += 1
        self._outlet_words[it.source].update(_page_words(it))
        for g in it.grams:
            holders = self._outlet_grams[(it.source, g)]
            if len(holders) == self.p.template_titles:  # now a template for the earlier titles too
                for h in holders:
                    other = self.items.get(h)
                    if other is not None:
                        other.dirty()
            holders.append(it.id)

    def _insert_story(self, it: _Item) -> None:
        st = self.stories.get(it.story)
        if st is None:
            st = self.stories[it.story] = _StoryState(it.story, roundup=it.roundup)
        st.members.append(it.id)
        if it.root == it.id and not it.roundup:
            st.reps.append(it.id)
            it.top = self._index_terms(it)
            for t in it.top:
                self._term_index[t].append(it.id)

    def _dirty_root(self, root: int) -> None:
        for aid in self._root_members.get(root, ()):
            other = self.items.get(aid)
            if other is not None:
                other.dirty()


# A version: two or more dotted numbers, maybe with a suffix (13.5.7, 14.0a9, 18.1.1); not a
# price or a share (4.5%, $2.4), which stop at one dot and need no letters.
_VERSION_RE = re.compile(r"(?<![\w.$€£])v?\d{1,4}\.\d{1,4}(?:\.\d{1,5})+[a-z]{0,5}\d{0,3}\b"
                         r"|(?<![\w.$€£])v?\d{1,4}\.\d{1,4}[a-z]{1,5}\d{1,3}\b", re.IGNORECASE)
_DIGITS_RE = re.compile(r"\d+")
# A title n-gram that can be template: it holds a good part of two words ("hed acc" of "breached
# accounts", not "s 8base" of any verb before a name), or it is in a script without spaces.
_PHRASE_GRAM_RE = re.compile(r"[^\W_]{3}[\W_]+[^\W_]{3}"
                             r"|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_KB_RE = re.compile(r"\bKB(\d{6,8})\b", re.IGNORECASE)


def _names_in_slug(a: _Item, b: _Item) -> bool:
    """The address names what both titles name (github.com/owner/Repo under "x starred owner/Repo"),
    so it is the item's own page and not a category page several items link to."""
    slug = a.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    words = [w for w in re.split(r"[-_.+]+", slug) if len(w) >= 3]
    return any(w in a.title_key and w in b.title_key for w in words)


def _title_index_keys(title_key: str) -> tuple[str, ...]:
    """The whole title key, and its head and tail: a copy whose title lost or gained a few
    characters at one end (a decoded soft hyphen, a tag) is still found."""
    if len(title_key) < 16:
        return (title_key,)
    return (title_key, "^" + title_key[:12], "$" + title_key[-12:])


def _specific(title_key: str) -> bool:
    """Long enough that an equal title means one article: 8 letters, a CJK character counting two."""
    return len(title_key) + len(F.CJK_CHAR_RE.findall(title_key)) >= 8


def _id_kind(ident: str) -> str:
    return ident.split(":", 1)[0] if ":" in ident else "cve"


def _dot(x: dict[str, float], y: dict[str, float]) -> float:
    if len(x) > len(y):
        x, y = y, x
    return sum(w * y.get(t, 0.0) for t, w in x.items())


_WECHAT_BIZ_RE = re.compile(r"[?&]__biz=([^&#]+)")


def _source(outlet: str, url: str) -> str:
    """Who wrote the page, for the rules about one writer's own pages (frames, title templates,
    house vocabulary, an outlet's second page): the outlet and the site its link points to. An
    aggregator relays many sites, and one WeChat feed many accounts; they are not one writer."""
    if not url:
        return outlet
    host = urlsplit(url).hostname or ""
    host = host[4:] if host.startswith("www.") else host
    if host == "mp.weixin.qq.com":
        m = _WECHAT_BIZ_RE.search(url)
        host += "/" + (m.group(1) if m else "")
    return f"{outlet}|{host}" if host else outlet


def _title_names(it: _Item) -> set[str]:
    """Names a title gives in Latin letters (companies, products, groups; Chinese names of known
    ones are spelled so too), without genre words, numbers and identifiers, and without common
    words: title case capitalises every word ("Hospital", "August" are no company)."""
    return {t for t in it.title_names if t.isalpha() and len(t) >= 3 and not is_genre(t)
            and prior_share(t, "en") <= COMMON_NAME_SHARE}


def _page_words(it: _Item) -> set[str]:
    """Every word of a page (title, names, text), for an outlet's house vocabulary: a company's
    press releases repeat its name, its executives and its boilerplate paragraph."""
    out: set[str] = {*it.title_terms, *it.title_names}
    for ts in it.line_terms:
        out.update(ts)
    return out


def _arr(a: np.ndarray | None) -> np.ndarray:
    assert a is not None  # every item gets its signature array when it is made
    return a


def _uncount_root(index: dict[Any, dict[int, int]], key: Any, root: int) -> None:
    """One page of group ``root`` no longer holds the line ``key``."""
    roots = index.get(key)
    if roots and root in roots:
        roots[root] -= 1
        if roots[root] <= 0:
            del roots[root]
        if not roots:
            del index[key]


def _discard(items: list[int] | None, value: int) -> None:
    if items and value in items:
        items.remove(value)


def _top_terms(vec: dict[str, float], n: int) -> list[str]:
    """The n heaviest terms: vectors are kept heaviest first."""
    return list(itertools.islice(vec, n))
