"""Score retrieval on a questions file (the format of shared/eval/questions.jsonl).

A hit is a passage from the expected article whose text contains `must_contain`, with quotes
and whitespace normalised. Speaker accuracy looks at the first hit in the top 3.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import QAError
from index.records import SearchResult
from index.search import Searcher
from index.settings import SearchMode

_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "`": "'"})


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(_QUOTES)).strip().casefold()


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    article: str | None
    must_contain: str | None
    speaker: str | None
    out_of_scope: bool


def read_questions(path: Path) -> list[EvalQuestion]:
    questions = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                questions.append(
                    EvalQuestion(
                        question=row["question"],
                        article=row.get("article"),
                        must_contain=row.get("must_contain"),
                        speaker=row.get("speaker"),
                        out_of_scope=bool(row.get("out_of_scope", False)),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise QAError(f"{path}:{number}: not a question record ({exc})") from exc
    if not questions:
        raise QAError(f"{path} holds no questions")
    return questions


def hit_rank(question: EvalQuestion, result: SearchResult) -> int | None:
    """1-based rank of the first passage that answers, or None."""
    needle = normalise(question.must_contain or "")
    for passage in result.passages:
        if passage.chunk.article_id == question.article and needle in normalise(passage.chunk.text):
            return passage.rank
    return None


def evaluate(
    searcher: Searcher, questions: list[EvalQuestion], mode: SearchMode | None = None
) -> dict[str, Any]:
    answerable = [q for q in questions if not q.out_of_scope]
    hits1 = hits3 = 0
    reciprocal = 0.0
    speaker_total = speaker_ok = abstain_ok = 0
    details = []
    for question in questions:
        result = searcher.search(question.question, top_k=10, mode=mode)
        rank = None if question.out_of_scope else hit_rank(question, result)
        abstain_ok += result.abstained == question.out_of_scope
        if rank is not None:
            hits1 += rank == 1
            hits3 += rank <= 3
            reciprocal += 1 / rank
        speaker = None
        if question.speaker:
            speaker_total += 1
            if rank is not None and rank <= 3:
                speaker = result.passages[rank - 1].chunk.speaker
            speaker_ok += speaker == question.speaker
        details.append(
            {"question": question.question, "rank": rank, "abstained": result.abstained,
             "speaker": speaker, "expected_speaker": question.speaker}
        )
    n = max(len(answerable), 1)
    return {
        "hit_at_1": round(hits1 / n, 4),
        "hit_at_3": round(hits3 / n, 4),
        "mrr_at_10": round(reciprocal / n, 4),
        "speaker_accuracy": round(speaker_ok / speaker_total, 4) if speaker_total else None,
        "abstention_accuracy": round(abstain_ok / len(questions), 4),
        "questions": len(questions),
        "details": details,
    }
