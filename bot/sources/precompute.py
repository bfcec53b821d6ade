"""Per-article work that depends on the text alone, done where the article is parsed.

Story features (lines, words, MinHash) and search-index token streams cost most of an
article's CPU time. A folder pass computes them in its parse workers, beside parsing, so
the main process only decides and writes. Whatever is missing (feeds, a failure here) is
computed again where it is used.
"""

from __future__ import annotations

import logging

from bot.model import Article
from bot.search.engine import index_fields
from bot.stories.engine import TEMPLATE_GRAM
from bot.stories.features import extract

log = logging.getLogger(__name__)


def precompute(article: Article) -> None:
    try:
        article.features = extract(article.title or "", article.body or "", article.outlet or "",
                                   template_gram=TEMPLATE_GRAM)
        article.index_fields = index_fields(article.title, article.summary, article.body, article.outlet)
    except Exception:  # the consumer computes it again and reports there
        log.debug("precompute failed for %s", article.path or article.url, exc_info=True)
        article.features = article.index_fields = None
