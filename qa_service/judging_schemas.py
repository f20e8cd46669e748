"""Request and response models of the judging routes (qa_service/routes/judging.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from index.records import ARTICLE_ID_PATTERN, Confidence
from qa_service.judgments import Judgment, Summary

MAX_SPAN_CHARS = 4000  # the longest passage an editor may mark as the answer
Verdict = Literal["answers", "not_in_archive"]


class JudgmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question_id: str = Field(..., pattern=r"^[0-9a-f]{32}$", description="a logged question's id (`answer_id`)")
    verdict: Verdict = Field(..., description="a passage answers the question, or the archive does not")
    article_id: str | None = Field(None, pattern=ARTICLE_ID_PATTERN, description="for 'answers': the article")
    start: int | None = Field(None, ge=0, description="for 'answers': offset of the span in the article text")
    end: int | None = Field(None, ge=1, description="for 'answers': offset just past the span")
    judge: str | None = Field(None, max_length=80, description="who judged (the editor's name)")

    @model_validator(mode="after")
    def _span(self) -> Self:
        where = (self.article_id, self.start, self.end)
        if self.verdict == "not_in_archive":
            if any(value is not None for value in where):
                raise PydanticCustomError(
                    "judgment", "a 'not_in_archive' verdict names no passage: leave out article_id, start and end"
                )
            return self
        if self.article_id is None or self.start is None or self.end is None:
            raise PydanticCustomError("judgment", "an 'answers' verdict needs article_id, start and end")
        if self.end <= self.start:
            raise PydanticCustomError("judgment", f"end ({self.end}) must be after start ({self.start})")
        if self.end - self.start > MAX_SPAN_CHARS:
            raise PydanticCustomError(
                "judgment", f"the span is {self.end - self.start} characters; the limit is {MAX_SPAN_CHARS}"
            )
        return self


class JudgmentOut(BaseModel):
    id: int
    question_id: str
    question: str
    verdict: Verdict
    article_id: str | None
    start: int | None
    end: int | None
    text: str | None = Field(..., description="the article's text from start to end")
    speaker: str | None = Field(..., description="who speaks at start (the index chunk that holds it)")
    judge: str | None
    judged_at: float = Field(..., description="unix seconds")
    right: bool | None = Field(
        ..., description="for a question answered with confidence 'high': whether its first passage was in "
        "the judged article and overlapped the span; null when it was not confident"
    )

    @classmethod
    def of(cls, judgment: Judgment) -> JudgmentOut:
        return cls(**asdict(judgment))


class JudgingPassageOut(BaseModel):
    rank: int = Field(..., description="1-based, as it was shown")
    article_id: str
    title: str | None
    section: Literal["body", "comment"]
    speaker: str | None
    start: int = Field(..., description="offset into the article text")
    end: int
    text: str


class JudgingQuestionOut(BaseModel):
    question_id: str
    question: str
    asked_at: float = Field(..., description="unix seconds")
    confidence: Confidence
    helpful: bool | None
    reason: Literal["unanswered", "not_helpful", "low_confidence", "confident"]
    passages: list[JudgingPassageOut] = Field(
        ..., description="what was shown, in the index served now (those of articles since removed left out)"
    )
    judgments: list[JudgmentOut] = Field(..., description="judgments of this wording, oldest first")


class JudgingOut(BaseModel):
    questions: list[JudgingQuestionOut]
    waiting: int = Field(..., description="distinct wordings in the period without a judgment")
    judged: int = Field(..., description="judgments in all")


class WeekOut(BaseModel):
    week_start: str = Field(..., description="YYYY-MM-DD, a Monday (UTC)")
    confident_judged: int
    confident_right: int
    precision: float | None


class JudgmentSummaryOut(BaseModel):
    weeks: list[WeekOut] = Field(..., description="this week first")
    judged: int = Field(..., description="judgments in all")
    not_in_archive: int

    @classmethod
    def of(cls, summary: Summary) -> JudgmentSummaryOut:
        return cls.model_validate(asdict(summary))
