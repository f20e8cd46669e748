"""The answer and confidence stages through real searches of the sample index: what may be a
short answer, who it is attributed to, and what is never "high"."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from index.encoder import Encoder
from index.evaluate import answer_right, read_eval_set
from index.search import Searcher
from index.sentences import MIN_WORDS, why_not_an_answer, words
from index.settings import Settings
from index.store import load_index

TUNE = Path(__file__).resolve().parent.parent / "eval" / "extra.jsonl"  # tune-only questions
# Questions whose first passage opens with a byline, a credit line, a heading or a list.
AWKWARD = [
    "what's completely missing from the long term plan",
    "does adam lent think medics are too high and mighty with patients",
    "what does the labour policy say about prevention and intervention",
    "what should the nhs do according to the list of conclusions",
    "What is the best we can hope for from the new Government?",
]


@pytest.fixture(scope="module")
def eager(sample_index: Path, encoder: Encoder) -> Searcher:
    """A searcher that gives a short answer whenever the answer stage finds one: the bar for
    "high" at 0.01, so that what the answer stage lets through is seen on every search."""
    settings = Settings(index_dir=sample_index, target_precision=0.01)
    return Searcher(load_index(sample_index), encoder, settings)


def tune_searches() -> list[tuple[str, list[str]]]:
    """(question, history) for every question and follow-up of the tune-only set."""
    eval_set = read_eval_set(TUNE)
    asked = [(q.question, []) for q in eval_set.questions]
    for conversation in eval_set.conversations:
        questions = [turn.question for turn in conversation.turns]
        asked += [(q, questions[:i]) for i, q in enumerate(questions)]
    return asked


@pytest.mark.slow
def test_a_short_answer_is_never_a_byline_heading_list_number_question_or_fragment(eager: Searcher) -> None:
    answered = 0
    for question, history in tune_searches() + [(q, []) for q in AWKWARD]:
        result = eager.search(question, history=history)
        if result.answer is None:
            continue
        answered += 1
        text = result.answer.text
        assert why_not_an_answer(text) is None, (question, text)
        assert len(words(text)) >= MIN_WORDS and not text.rstrip("”\"’' ").endswith("?"), (question, text)
        cited = result.passages[result.answer.citation - 1]
        assert text == cited.chunk.text[cited.highlight.start : cited.highlight.end]
    assert answered >= 50  # the rule was seen at work, not skipped


def test_the_credit_line_and_the_byline_are_not_the_answer(eager: Searcher) -> None:
    for question in AWKWARD[:2]:
        answer = eager.search(question).answer
        assert answer is None or not (
            answer.text.startswith("A guest briefing") or answer.text.startswith("Adam Lent, director")
        ), answer


def test_the_grandfathers_memoir_is_not_put_in_simon_duffys_mouth(eager: Searcher) -> None:
    memoir = ("We had a National Health Service by now.", "This was a great innovation.")
    # Readers were once shown "“We had a National Health Service by now.” — Simon Duffy" for it.
    result = eager.search("is the uk guilty of luring doctors from poor nations?")
    quoting = [p for p in result.passages if any(line in p.chunk.text for line in memoir)]
    assert quoting, "the memoir's passage is found"
    # The text never names the grandfather: his memoir's passage is nobody's, and so is an
    # answer taken from it.
    assert all(p.chunk.speaker != "Simon Duffy" for p in quoting)
    answer = result.answer
    if answer is not None and any(line in answer.text for line in memoir):
        assert answer.speaker is None


@pytest.mark.slow
def test_a_doubtful_search_is_seldom_high_and_then_right(searcher: Searcher) -> None:
    # When the dense and the lexical retriever put different passages first, the first passage
    # is right about half the time on the tune-only questions, against nine times in ten when
    # they agree. The calibration reads the disagreement: it lowers the probability, such a
    # search is "high" far less often, and only where the rest of what the search knows makes
    # up for it (the shipped calibration never does on these questions; all-mpnet-base-v2's, 3
    # times in 92). A confident answer to a doubtful search must still be right.
    calibration = searcher.calibration.calibration
    assert calibration is not None
    seen = {True: [0, 0], False: [0, 0]}  # agree -> [searches, high]
    eval_set = read_eval_set(TUNE)
    asked = [(q, []) for q in eval_set.questions]
    for conversation in eval_set.conversations:
        turns = conversation.turns
        asked += [(turn, [t.question for t in turns[:i]]) for i, turn in enumerate(turns)]
    for question, history in asked:
        result, signals = searcher.search_with_signals(question.question, history=history)
        if signals is None:
            continue
        agree = bool(signals.agree)
        seen[agree][0] += 1
        seen[agree][1] += result.confidence == "high"
        if not agree:
            said = (question.question, json.dumps(signals.__dict__))
            assert calibration.probability(replace(signals, agree=1.0)) > calibration.probability(signals), said
            assert result.confidence != "high" or answer_right(question, result), said
    (doubtful, doubtful_high), (agreeing, agreeing_high) = seen[False], seen[True]
    assert doubtful >= 30 and agreeing_high >= 1  # both kinds were seen
    assert doubtful_high / doubtful <= agreeing_high / agreeing / 4
