"""Small dataclasses stored in an index version and passed between stages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import HttpUrl, TypeAdapter, ValidationError

BODY = "body"
COMMENT = "comment"
SECTIONS = (BODY, COMMENT)
# Article ids double as file names: no '/', no leading dot, nothing outside this set.
ARTICLE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
ARTICLE_ID_RULE = "use letters, digits, '.', '_' or '-' (at most 200, not starting with a dot)"
_ARTICLE_ID = re.compile(ARTICLE_ID_PATTERN)


def is_valid_article_id(article_id: object) -> bool:
    """Whether `article_id` may name an article (and so a file in the articles folder)."""
    return isinstance(article_id, str) and _ARTICLE_ID.fullmatch(article_id) is not None


_HTTP_URL = TypeAdapter(HttpUrl)


def web_link(url: str | None) -> str | None:
    """`url` as an absolute http or https link, in the form a browser reads it (pydantic's
    WHATWG parser: "HTTPS://X.org" -> "https://x.org/"), or None for anything else:
    `javascript:`, `data:`, `ftp:`, relative or malformed. An article's link is shown to
    readers, so only a web page may come out of the index."""
    if not url:
        return None
    try:
        return str(_HTTP_URL.validate_python(url))
    except ValidationError:
        return None


@dataclass(frozen=True)
class ArticleRecord:
    """One article as stored: its full text (what chunk offsets point into) and metadata."""

    id: str
    text: str
    content_hash: str
    title: str | None = None
    author: str | None = None
    date: str | None = None
    url: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A passage of one article: `text == article.text[start:end]`."""

    id: str
    article_id: str
    text: str
    start: int
    end: int
    section: str
    speaker: str | None
    text_hash: str


@dataclass(frozen=True)
class Highlight:
    """The best sentence of a passage, as offsets into the passage text."""

    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A search result: a chunk with its citation fields and scores."""

    rank: int
    score: float
    dense_score: float
    chunk: Chunk
    article: ArticleRecord
    highlight: Highlight


@dataclass(frozen=True)
class Answer:
    """A short extractive answer taken from one cited passage."""

    text: str
    speaker: str | None
    citation: int


# How sure a search is that its passages answer the question:
# "high": passages and a short answer; "low": passages that may be related, no short answer;
# "none": nothing found (`SearchResult.abstained`).
Confidence = Literal["high", "low", "none"]
CONFIDENCE_LEVELS: tuple[Confidence, ...] = ("high", "low", "none")


@dataclass(frozen=True)
class SearchResult:
    question: str
    passages: list[Passage]
    confidence: Confidence
    answer: Answer | None
    index_version: str
    took_ms: float = 0.0
    # The calibrated estimate that the first passage answers the question (index/confidence.py);
    # None when nothing was searched or no calibration applies.
    probability: float | None = None
    # Why the passages are in fused order though a reranker is set (it timed out, was down or
    # answered garbage: index/rerank.py); None when it reranked, or none is set.
    rerank_error: str | None = None

    @property
    def abstained(self) -> bool:
        """Nothing was found: no passages, no answer."""
        return self.confidence == "none"


@dataclass(frozen=True)
class Filters:
    """Optional restrictions on which chunks may be returned; empty means no restriction."""

    article_ids: frozenset[str] = field(default_factory=frozenset)
    speakers: frozenset[str] = field(default_factory=frozenset)
    sections: frozenset[str] = field(default_factory=frozenset)
    date_from: str | None = None  # YYYY-MM-DD, compared with articles' dates to the day
    date_to: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.article_ids or self.speakers or self.sections or self.date_from or self.date_to)
