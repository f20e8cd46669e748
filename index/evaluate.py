"""Score retrieval on a questions file (the format of shared/eval/questions.jsonl,
shared/eval/conversations.jsonl and shared/eval/readers/).

A passage answers a question when it is from the expected article and its text contains any
of the row's spans (`must_contain_any`, or the older `must_contain`), with quotes and
whitespace normalised. A hit is such a passage among those shown. Speaker accuracy looks at
the first hit in the top 3.

What `confidence: high` promises is scored too: a confident answer is right when the passage
it cites answers the question, and the first passage's correctness is tallied per confidence
level and, where results carry a calibrated `probability`, against it (index/reliability.py).

A row with "turns" is a conversation: its turns are questions in the same format. Its first
turn is a question asked on its own, scored with the single questions (qa-eval); every turn
after it (a follow-up) is searched with the earlier turns' questions as history, as the
service does. Follow-ups are scored apart, and once more without history, to show what the
history contributes.
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
from index.records import CONFIDENCE_LEVELS, Passage, SearchResult
from index.reliability import reliability_report, rounded
from index.search import Searcher
from index.settings import SearchMode

QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "`": "'"})


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(QUOTES)).strip().casefold()


@dataclass(frozen=True)
class EvalQuestion:
    """One question and what answers it: a passage of `article` holding any of
    `must_contain_any` (a row's `must_contain` is folded in). Empty for out-of-scope rows."""

    question: str
    article: str | None
    must_contain_any: tuple[str, ...]
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

    @property
    def asked_alone(self) -> list[EvalQuestion]:
        """The single questions and each conversation's first turn: a first turn is a question
        asked on its own, and is scored with them."""
        return self.questions + [c.turns[0] for c in self.conversations]


def _spans(row: dict[str, Any]) -> tuple[str, ...]:
    """The row's acceptable spans, `must_contain_any` first, without repeats. An empty span
    would be found in every passage, and a bare string where a list belongs would be read
    letter by letter: both are refused."""
    listed = row.get("must_contain_any") or []
    single = row.get("must_contain")
    if not isinstance(listed, list) or not all(isinstance(span, str) for span in listed):
        raise ValueError("must_contain_any must be a list of strings")
    if single is not None and not isinstance(single, str):
        raise ValueError("must_contain must be a string")
    spans = [*listed, *([single] if single is not None else [])]
    if any(not span.strip() for span in spans):
        raise ValueError("a span to contain is empty")
    return tuple(dict.fromkeys(spans))


def _question(row: dict[str, Any]) -> EvalQuestion:
    out_of_scope = bool(row.get("out_of_scope", False))
    spans = _spans(row)
    if not spans and not out_of_scope:
        raise ValueError("an answerable row needs must_contain_any or must_contain "
                         "(or out_of_scope: true)")
    return EvalQuestion(
        question=row["question"],
        article=row.get("article"),
        must_contain_any=spans,
        speaker=row.get("speaker"),
        out_of_scope=out_of_scope,
    )


def _turns(rows: list[Any]) -> list[EvalQuestion]:
    """A conversation's turns; a bad turn's error says which one."""
    if len(rows) < 2:
        raise ValueError("a conversation needs at least two turns")
    turns = []
    for number, row in enumerate(rows, start=1):
        try:
            turns.append(_question(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"turn {number}: {exc}") from exc
    return turns


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
                conversations.append(EvalConversation(turns=_turns(row["turns"])))
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


def passage_answers(question: EvalQuestion, passage: Passage) -> bool:
    """Whether `passage` is from the expected article and holds one of the spans."""
    if question.out_of_scope or passage.chunk.article_id != question.article:
        return False
    text = normalise(passage.chunk.text)
    return any(normalise(span) in text for span in question.must_contain_any)


def hit_rank(question: EvalQuestion, result: SearchResult) -> int | None:
    """1-based rank of the first passage that answers, or None."""
    for passage in result.passages:
        if passage_answers(question, passage):
            return passage.rank
    return None


def first_passage_right(question: EvalQuestion, result: SearchResult) -> bool:
    """Whether the first passage answers: what `probability` estimates, so the label a
    calibration is fitted to. Never for an out-of-scope question (nothing answers it)."""
    return bool(result.passages) and passage_answers(question, result.passages[0])


def cited_passage(result: SearchResult) -> Passage | None:
    """The passage the short answer cites (`citation` is a 1-based rank), if any."""
    if result.answer is None:
        return None
    return next((p for p in result.passages if p.rank == result.answer.citation), None)


def answer_right(question: EvalQuestion, result: SearchResult) -> bool | None:
    """None without a short answer; else whether the passage it cites answers the question.
    The citation is what a reader checks, so an answer citing a wrong passage is wrong even
    when a right passage is shown elsewhere."""
    if result.answer is None:
        return None
    cited = cited_passage(result)
    return cited is not None and passage_answers(question, cited)


def is_confident(result: SearchResult) -> bool:
    """A short answer was given: the service's promise that the passages answer."""
    return result.confidence == "high" and result.answer is not None


Outcomes = Sequence[tuple[EvalQuestion, SearchResult]]


def _confident_scores(outcomes: Outcomes, answerable: int) -> dict[str, Any]:
    """Precision and coverage of the confident answers, and whether their speakers are right.

    A speaker is checked where the answer shows one or the row expects one: an answer naming a
    speaker the row does not (the text does not say who spoke) is wrong, as is a missing one.
    `speaker_unlabelled` counts the first kind apart, so a reader of the figures can tell an
    answer that contradicts the row's speaker from one where the row names nobody."""
    confident = [(q, r) for q, r in outcomes if is_confident(r)]
    right = [(q, r) for q, r in confident if answer_right(q, r)]
    checked = [(q, r) for q, r in right if r.answer.speaker or q.speaker]
    return {
        "confident": len(confident),
        "confident_right": len(right),
        "precision": rounded(len(right) / len(confident) if confident else None),
        "coverage": rounded(len(right) / answerable if answerable else None),
        "speaker_checked": len(checked),
        "speaker_right": sum(r.answer.speaker == q.speaker for q, r in checked),
        "speaker_unlabelled": sum(q.speaker is None for q, _ in checked),
    }


def _reliability_scores(outcomes: Outcomes, answerable: int) -> dict[str, Any]:
    """`reliability_report` of the first passages: by confidence level, and against
    `probability` where results carry one (out-of-scope questions count as not right)."""
    by_level = [(r.confidence, first_passage_right(q, r)) for q, r in outcomes]
    by_probability = [
        (r.probability, first_passage_right(q, r)) for q, r in outcomes if r.probability is not None
    ]
    return reliability_report(by_level, CONFIDENCE_LEVELS, by_probability, answerable)


def _detail(
    question: EvalQuestion, result: SearchResult, rank: int | None, speaker: str | None
) -> dict[str, Any]:
    """One question's outcome, with what was expected, for `--details`."""
    cited = cited_passage(result)
    return {
        "question": question.question, "rank": rank, "confidence": result.confidence,
        "abstained": result.abstained, "speaker": speaker, "expected_speaker": question.speaker,
        "probability": result.probability,
        "first_passage_right": first_passage_right(question, result),
        "answer": None if result.answer is None else result.answer.text,
        "answer_speaker": None if result.answer is None else result.answer.speaker,
        "answer_right": answer_right(question, result),
        "cited_article": None if cited is None else cited.chunk.article_id,
        "expected_article": question.article,
        "expected_spans": list(question.must_contain_any),
        "out_of_scope": question.out_of_scope,
    }


def _score(outcomes: Outcomes) -> dict[str, Any]:
    """hit@1, hit@3, MRR (over the passages shown: `mrr_at_10` keeps its name from when ten
    were), speaker and abstention accuracy of searched questions, and how
    often each confidence level occurs for answerable and for out-of-scope questions.

    A hit counts on whatever passages are shown, at high or low confidence. Abstention
    accuracy: an answerable question must not abstain (nothing shown), an out-of-scope one
    must. `out_of_scope_answered` counts out-of-scope questions given a short answer (high
    confidence), the worse failure of the two ways an out-of-scope question can be shown.
    The confident-answer and reliability figures are described in `_confident_scores` and
    `_reliability_scores`."""
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
        details.append(_detail(question, result, rank, speaker))
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
        **_confident_scores(outcomes, len(answerable)),
        **_reliability_scores(outcomes, len(answerable)),
        "questions": len(outcomes),
        "details": details,
    }


def evaluate(
    searcher: Searcher, questions: list[EvalQuestion], mode: SearchMode | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """`_score` of each question searched as served: `top_k` passages (None: the searcher's
    setting, 5 by default), so confidence and answers are those a reader would get."""
    outcomes = [(q, searcher.search(q.question, top_k=top_k, mode=mode)) for q in questions]
    return _score(outcomes)


def evaluate_conversations(
    searcher: Searcher, conversations: list[EvalConversation], mode: SearchMode | None = None,
    top_k: int | None = None,
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
                (turn, searcher.search(turn.question, top_k=top_k, mode=mode, history=history))
            )
            alone.append((turn, searcher.search(turn.question, top_k=top_k, mode=mode)))
            histories.append(history)
    scores = _score(with_history)
    details = [row | {"history": history} for row, history in zip(scores.pop("details"), histories)]
    scores["hit_at_3_without_history"] = _score(alone)["hit_at_3"]
    return {f"followup_{key}": value for key, value in scores.items()} | {"details": details}
