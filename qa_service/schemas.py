"""Request and response models: the HTTP contract, as documented in the OpenAPI schema."""

from __future__ import annotations

import datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from index.conversation import (
    MAX_EARLIER_QUESTION_CHARS,
    MAX_HISTORY_CHARS,
    MAX_TURN_CHARS,
    earlier_question_too_long,
    history_too_long,
)
from index.records import ARTICLE_ID_PATTERN, Answer, Confidence, Passage, SearchResult, web_link
from qa_service.compose import ComposedAnswer

# An article's link as the API gives it: absolute http(s) or null, whatever the index holds
# (an index built before links were checked may hold `javascript:`).
WebLink = Annotated[
    str | None,
    AfterValidator(web_link),
    Field(description="the article's page: an absolute http or https URL, or null"),
]


class Strict(BaseModel):
    # An unknown field is a mistake the caller should hear about, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class Turn(Strict):
    role: Literal["user", "assistant"]
    content: str = Field(
        ..., max_length=MAX_TURN_CHARS,
        description=f"at most {MAX_TURN_CHARS:,} characters, and a user turn (an earlier question) "
        f"{MAX_EARLIER_QUESTION_CHARS:,}; all turns together at most {MAX_HISTORY_CHARS:,}",
    )

    @model_validator(mode="after")
    def _earlier_question(self) -> Self:
        if self.role == "user" and len(self.content) > MAX_EARLIER_QUESTION_CHARS:
            raise PydanticCustomError("question_too_long", earlier_question_too_long(len(self.content)))
        return self


MAX_FILTER_VALUES = 100  # article ids, or speakers, in one question's filters (POST and GET /ask)
Section = Literal["body", "comment"]  # the article's own text, or its readers' comments


class AskFilters(Strict):
    article_ids: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    speakers: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    sections: list[Section] = Field(default_factory=list)
    date_from: datetime.date | None = Field(None, description="YYYY-MM-DD; articles dated on or after")
    date_to: datetime.date | None = Field(None, description="YYYY-MM-DD; articles dated on or before")


class AskRequest(Strict):
    question: str = Field(
        ..., min_length=1, max_length=10_000, pattern=r"\S",
        description="the question, in plain words (the service's limit is QA_MAX_QUESTION_CHARS)",
    )
    history: list[Turn] = Field(
        default_factory=list,
        description="earlier turns of the conversation, oldest first; user turns are used to "
        "resolve follow-ups such as 'what else does he say?' (the latest few are searched). At most "
        f"QA_MAX_HISTORY_TURNS (20) turns, each at most {MAX_TURN_CHARS:,} characters (a user "
        f"turn {MAX_EARLIER_QUESTION_CHARS:,}), {MAX_HISTORY_CHARS:,} in all",
    )
    top_k: int | None = Field(None, ge=1, le=20, description="passages to return (default: QA_TOP_K, 5)")
    filters: AskFilters | None = None
    generate: bool | None = Field(
        None,
        description="compose an answer with the language model (default: yes when the service "
        "has one, QA_LLM_URL); only confident searches are composed",
    )

    @field_validator("history")
    @classmethod
    def _history_budget(cls, history: list[Turn]) -> list[Turn]:
        total = sum(len(turn.content) for turn in history)
        if total > MAX_HISTORY_CHARS:
            raise PydanticCustomError("history_too_long", history_too_long(total))
        return history


class HighlightOut(BaseModel):
    start: int = Field(..., description="offset into the passage text")
    end: int


class PassageOut(BaseModel):
    rank: int
    score: float
    article_id: str
    title: str | None
    author: str | None
    url: WebLink
    section: Literal["body", "comment"]
    speaker: str | None
    text: str
    start: int = Field(..., description="offset of the passage in the article text")
    end: int
    highlight: HighlightOut

    @classmethod
    def of(cls, passage: Passage) -> PassageOut:
        chunk, article = passage.chunk, passage.article
        return cls(
            rank=passage.rank,
            score=passage.score,
            article_id=chunk.article_id,
            title=article.title,
            author=article.author,
            url=article.url,
            section=chunk.section,  # type: ignore[arg-type]
            speaker=chunk.speaker,
            text=chunk.text,
            start=chunk.start,
            end=chunk.end,
            highlight=HighlightOut(start=passage.highlight.start, end=passage.highlight.end),
        )


class AnswerOut(BaseModel):
    text: str
    speaker: str | None
    citation: int = Field(..., description="rank of the passage the answer comes from")

    @classmethod
    def of(cls, answer: Answer | None) -> AnswerOut | None:
        return None if answer is None else cls(text=answer.text, speaker=answer.speaker, citation=answer.citation)


class GeneratedSentence(BaseModel):
    text: str = Field(..., description="as the model wrote it, with its [n] markers")
    citations: list[int] = Field(..., description="the passage ranks it cites")
    supported: bool = Field(..., description="the cited passages support it; only these are in text")
    reason: str | None = Field(..., description="why it is unsupported; null when supported")


class GeneratedOut(BaseModel):
    text: str = Field(
        ..., description="the supported sentences, with their [n] markers; empty when none is "
        "supported (show the extractive answer then)",
    )
    sentences: list[GeneratedSentence] = Field(..., description="every sentence, removed ones too")
    model: str
    took_ms: float

    @classmethod
    def of(cls, composed: ComposedAnswer) -> GeneratedOut:
        return cls(
            text=composed.text,
            sentences=[
                GeneratedSentence(text=sentence.text, citations=sentence.citations,
                                  supported=sentence.supported, reason=sentence.reason)
                for sentence in composed.sentences
            ],
            model=composed.model,
            took_ms=composed.took_ms,
        )


class SearchAnswer(BaseModel):
    """A search's answer: what /ask returns before its own fields, and the MCP tool's
    structured content (qa_service/mcp_server.py)."""

    question: str
    abstained: bool = Field(
        ..., description="true when nothing in the archive is close: no passages, no answer"
    )
    confidence: Confidence = Field(
        ...,
        description="high: the passages answer it, with a short answer; low: the passages may "
        "be related, no short answer is given; none: nothing found (abstained)",
    )
    probability: float | None = Field(
        None,
        description="the calibrated estimate that the first passage answers the question; high "
        "needs at least QA_TARGET_PRECISION (0.95). null when nothing was found or the index's "
        "model has no calibration (GET /readyz says which applies)",
    )
    answer: AnswerOut | None = Field(..., description="given only at high confidence")
    passages: list[PassageOut]
    index_version: str
    rerank_error: str | None = Field(
        None, description="why the passages are in the retrievers' fused order though a reranker "
        "is configured (QA_RERANK, QA_RERANK_URL): it timed out, could not be reached or gave no "
        "usable scores; null when it reranked, or none is configured",
    )

    @classmethod
    def of(cls, result: SearchResult, **fields: object) -> Self:
        """`result` as this model, with the subclass's own `fields`."""
        return cls(
            question=result.question,
            abstained=result.abstained,
            confidence=result.confidence,
            probability=None if result.probability is None else round(result.probability, 4),
            answer=AnswerOut.of(result.answer),
            passages=[PassageOut.of(p) for p in result.passages],
            index_version=result.index_version,
            rerank_error=result.rerank_error,
            **fields,
        )


class AskResponse(SearchAnswer):
    took_ms: float
    searched_as: str | None = Field(
        None, description="the follow-up as the language model rewrote it and the archive was "
        "searched (QA_LLM_REWRITE_FOLLOWUPS); null when searched as asked",
    )
    generated: GeneratedOut | None = Field(
        None, description="the composed answer, checked against its citations; null when none "
        "was composed (not asked for, no language model, or the search was not confident)",
    )
    generation_error: str | None = Field(
        None, description="why composing failed (the extractive answer stands); null otherwise"
    )
    answer_id: str | None = Field(
        None, description="what POST /feedback refers to; null when the question log is off"
    )



class ArticleSummary(BaseModel):
    id: str
    title: str | None
    author: str | None
    date: str | None
    url: WebLink
    chunks: int


class ArticleList(BaseModel):
    articles: list[ArticleSummary]
    total: int
    offset: int
    limit: int
    index_version: str


class ArticleOut(ArticleSummary):
    source: str | None
    text: str = Field(..., description="full text; passage offsets point into it")
    index_version: str


class ArticleIn(Strict):
    id: str = Field(..., pattern=ARTICLE_ID_PATTERN)
    text: str = Field(..., min_length=1)
    title: str | None = Field(None, max_length=1000)
    author: str | None = Field(None, max_length=1000)
    date: str | None = Field(None, max_length=100)
    url: str | None = Field(None, max_length=2000, description="absolute http or https URL")
    source: str | None = Field(None, max_length=1000)

    @field_validator("url")
    @classmethod
    def _web_link(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and web_link(value.strip()) is None:
            raise ValueError("url must be an absolute http or https URL")
        return value


class JobAccepted(BaseModel):
    job_id: str
    status_url: str
    article_id: str | None = None


class JobOut(BaseModel):
    id: str
    reason: str
    status: Literal["queued", "running", "succeeded", "failed"]
    created: float
    started: float | None
    finished: float | None
    stage: str | None = Field(None, description="loading, embedding, publishing or merging while running")
    done: int
    total: int
    result: dict | None = Field(None, description="the ingest report when it succeeded")
    error: str | None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    index_version: str | None
    articles: int
    chunks: int
    detail: str | None = None
    calibration: str | None = Field(
        None, description="which calibration sets confidence, or why answers are never high"
    )


class ErrorOut(BaseModel):
    detail: str


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(..., pattern=r"^[0-9a-f]{32}$", description="`answer_id` of an /ask response")
    helpful: bool


class FeedbackOut(BaseModel):
    answer_id: str
    helpful: bool


class AskedOut(BaseModel):
    question: str
    count: int


class UnansweredOut(BaseModel):
    question: str = Field(..., description="the group's most asked wording")
    count: int = Field(..., description="askings in the group: nothing found, or marked not helpful")
    examples: list[str] = Field(..., description="other wordings grouped with it (similar questions)")


class DayOut(BaseModel):
    day: str = Field(..., description="YYYY-MM-DD, UTC")
    questions: int
    unanswered: int


class InsightsOut(BaseModel):
    since_days: int
    questions: int
    most_asked: list[AskedOut]
    unanswered: list[UnansweredOut]
    per_day: list[DayOut]
    unanswered_wordings: int = Field(..., description="distinct unanswered questions (case and punctuation aside)")
    grouped: int = Field(
        ..., description="how many of them `unanswered` groups: the most asked, at most QA_INSIGHTS_SAMPLE"
    )
