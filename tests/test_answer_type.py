"""A question that asks for a figure (index/answer_type.py) is answered only by a sentence
that gives one."""

from __future__ import annotations

import pytest

from index.answer_type import asks_for_quantity, holds_quantity
from index.highlight import best_sentence
from index.search import Searcher


@pytest.mark.parametrize(
    ("question", "wants_figure"),
    [
        ("How many nurses does the NHS employ?", True),
        ("By how much did A&E attendances grow?", True),
        ("What is the total annual NHS budget?", True),
        ("What percentage of GPs are partners?", True),
        ("When does the clinic open?", False),
        ("Who argues against means-testing?", False),
        ("Why can't the current set-up cope with demand?", False),
    ],
)
def test_the_wh_phrase_says_whether_a_figure_is_wanted(question: str, wants_figure: bool) -> None:
    assert asks_for_quantity(question) is wants_figure


def test_a_figure_is_digits_a_sign_or_a_number_word_but_not_a_year_or_the_pronoun_one() -> None:
    assert holds_quantity("A&E visits were up 22 per cent.")
    assert holds_quantity("Costs have doubled in a decade.")
    assert holds_quantity("It cost £3bn.")
    assert not holds_quantity("I had to determine which one to use.")
    assert not holds_quantity("The NHS employs many nurses.")
    assert not holds_quantity("The care systems launched in 2019 need more nurses.")


def test_the_highlight_prefers_a_sentence_that_can_answer() -> None:
    text = "The plan document is long and rambling. The plan runs to 136 pages."
    weights = {"plan": 1.0, "document": 2.0, "long": 1.0}
    plain = best_sentence(text, weights)
    typed = best_sentence(text, weights, holds_quantity)
    assert text[plain.start : plain.end].startswith("The plan document is long")
    assert text[typed.start : typed.end] == "The plan runs to 136 pages."


def test_a_figure_question_the_archive_cannot_answer_gets_passages_but_no_answer(searcher: Searcher) -> None:
    # The sample shares "NHS", "nurses" and "employ" with this question but gives no figure.
    result = searcher.search("How many nurses does the NHS employ?", top_k=10)
    assert result.passages
    assert result.confidence == "low"
    assert result.answer is None


def test_a_figure_question_is_answered_with_the_sentence_that_gives_the_figure(searcher: Searcher) -> None:
    question = "How long is the NHS ten-year strategy document, according to the think tank director who criticised it?"
    result = searcher.search(question, top_k=3)
    assert result.confidence == "high"
    assert result.answer is not None and "136" in result.answer.text
