"""Score retrieval on a questions file (the format of shared/eval/questions.jsonl and
shared/eval/conversations.jsonl).

A hit is a passage from the expected article whose text contains `must_contain`, with quotes
and whitespace normalised. Speaker accuracy looks at the first hit in the top 3.

A row with "turns" is a conversation: its turns are questions in the same format, and every
turn after the first (a follow-up) is searched with the earlier turns' questions as history,
as the service does. Follow-ups are scored like questions, and once more without history, to
show what the history contributes.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import QAError
from index.records import CONFIDENCE_LEVELS, SearchResult
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


@dataclass(frozen=True)
class EvalConversation:
    """Questions asked one after another; every turn after the first is a follow-up."""

    turns: list[EvalQuestion]


@dataclass(frozen=True)
class EvalSet:
    """One evaluation file's rows: single questions and conversations (either may be empty)."""

    questions: list[EvalQuestion]
    conversations: list[EvalConversation]


def _question(row: dict[str, Any]) -> EvalQuestion:
    return EvalQuestion(
        question=row["question"],
        article=row.get("article"),
        must_contain=row.get("must_contain"),
        speaker=row.get("speaker"),
        out_of_scope=bool(row.get("out_of_scope", False)),
    )


def read_eval_set(path: Path) -> EvalSet:
    """Questions and conversations from a JSONL file; a bad row is an error naming its line."""
    with path.open(encoding="utf-8") as handle:
        return parse_eval_set(handle, str(path))


def parse_eval_set(lines: Iterable[str], name: str) -> EvalSet:
    """Questions and conversations from JSONL lines (`name` is where they came from, for
    error messages)."""
    questions: list[EvalQuestion] = []
    conversations: list[EvalConversation] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "turns" in row:
                turns = [_question(turn) for turn in row["turns"]]
                if len(turns) < 2:
                    raise ValueError("a conversation needs at least two turns")
                conversations.append(EvalConversation(turns=turns))
            else:
                questions.append(_question(row))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise QAError(
                f"{name}:{number}: not a question or conversation record ({exc})"
            ) from exc
    if not questions and not conversations:
        raise QAError(f"{name} holds no questions")
    return EvalSet(questions=questions, conversations=conversations)


def read_questions(path: Path) -> list[EvalQuestion]:
    """The single questions of a file (conversations are refused: use `read_eval_set`)."""
    eval_set = read_eval_set(path)
    if eval_set.conversations:
        raise QAError(f"{path} holds conversations; read it with read_eval_set")
    return eval_set.questions


def hit_rank(question: EvalQuestion, result: SearchResult) -> int | None:
    """1-based rank of the first passage that answers, or None."""
    needle = normalise(question.must_contain or "")
    for passage in result.passages:
        if passage.chunk.article_id == question.article and needle in normalise(passage.chunk.text):
            return passage.rank
    return None


def _score(outcomes: Sequence[tuple[EvalQuestion, SearchResult]]) -> dict[str, Any]:
    """hit@1, hit@3, MRR@10, speaker and abstention accuracy of searched questions, and how
    often each confidence level occurs for answerable and for out-of-scope questions.

    A hit counts on whatever passages are shown, at high or low confidence. Abstention
    accuracy: an answerable question must not abstain (nothing shown), an out-of-scope one
    must. `out_of_scope_answered` counts out-of-scope questions given a short answer (high
    confidence), the worse failure of the two ways an out-of-scope question can be shown."""
    answerable = [q for q, _ in outcomes if not q.out_of_scope]
    hits1 = hits3 = 0
    reciprocal = 0.0
    speaker_total = speaker_ok = abstain_ok = 0
    levels: dict[str, Counter[str]] = {"answerable": Counter(), "out_of_scope": Counter()}
    details = []
    for question, result in outcomes:
        rank = None if question.out_of_scope else hit_rank(question, result)
        abstain_ok += result.abstained == question.out_of_scope
        levels["out_of_scope" if question.out_of_scope else "answerable"][result.confidence] += 1
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
            {"question": question.question, "rank": rank, "confidence": result.confidence,
             "abstained": result.abstained, "speaker": speaker,
             "expected_speaker": question.speaker}
        )
    n = max(len(answerable), 1)
    return {
        "hit_at_1": round(hits1 / n, 4),
        "hit_at_3": round(hits3 / n, 4),
        "mrr_at_10": round(reciprocal / n, 4),
        "speaker_accuracy": round(speaker_ok / speaker_total, 4) if speaker_total else None,
        "abstention_accuracy": round(abstain_ok / len(outcomes), 4) if outcomes else None,
        "answerable_abstained": levels["answerable"]["none"],
        "out_of_scope_answered": levels["out_of_scope"]["high"],
        "confidence": {
            group: {level: counts[level] for level in CONFIDENCE_LEVELS}
            for group, counts in levels.items()
        },
        "questions": len(outcomes),
        "details": details,
    }


def evaluate(
    searcher: Searcher, questions: list[EvalQuestion], mode: SearchMode | None = None
) -> dict[str, Any]:
    outcomes = [(q, searcher.search(q.question, top_k=10, mode=mode)) for q in questions]
    return _score(outcomes)


def evaluate_conversations(
    searcher: Searcher, conversations: list[EvalConversation], mode: SearchMode | None = None
) -> dict[str, Any]:
    """Follow-up scores, keys prefixed "followup_"; details list each follow-up with its history.

    `followup_hit_at_3_without_history` searches the same follow-ups alone: the gap to
    `followup_hit_at_3` is what resolving the conversation adds."""
    with_history: list[tuple[EvalQuestion, SearchResult]] = []
    alone: list[tuple[EvalQuestion, SearchResult]] = []
    histories: list[list[str]] = []
    for conversation in conversations:
        asked = [turn.question for turn in conversation.turns]
        for position, turn in enumerate(conversation.turns[1:], start=1):
            history = asked[:position]
            with_history.append(
                (turn, searcher.search(turn.question, top_k=10, mode=mode, history=history))
            )
            alone.append((turn, searcher.search(turn.question, top_k=10, mode=mode)))
            histories.append(history)
    scores = _score(with_history)
    details = [row | {"history": history} for row, history in zip(scores.pop("details"), histories)]
    scores["hit_at_3_without_history"] = _score(alone)["hit_at_3"]
    return {f"followup_{key}": value for key, value in scores.items()} | {"details": details}
