"""A question that asks for a figure (index/answer_type.py) is answered only by a sentence
that gives one; a question that asks for a person is told apart, and so is a sentence that
names one."""

from __future__ import annotations

import pytest

from index.answer_type import (
    answer_filter,
    asks_for_person,
    asks_for_quantity,
    holds_quantity,
    names_person,
)
from index.highlight import best_sentence, sentence_spans
from index.search import Searcher
from tests.conftest import SAMPLE_ARTICLES


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
    assert result.confidence != "high" and result.answer is None


def test_a_figure_question_is_answered_with_the_sentence_that_gives_the_figure(answering_searcher: Searcher) -> None:
    question = "How long is the NHS ten-year strategy document, according to the think tank director who criticised it?"
    result = answering_searcher.search(question, top_k=3)
    # The passage opens with a credit line that names the director; the sentence shown is the
    # one with the figure, and a short answer, when the search is sure enough, is that one.
    top = result.passages[0]
    shown = top.chunk.text[top.highlight.start : top.highlight.end]
    assert "136" in shown and not shown.startswith("A guest briefing")
    assert result.answer is None or result.answer.text == shown


def test_only_a_figure_question_filters_sentences() -> None:
    assert answer_filter("How many nurses does the NHS employ?") is holds_quantity
    assert answer_filter("Who argues against means-testing?") is None


@pytest.mark.parametrize(
    ("question", "wants_person"),
    [
        ("Who argues against means-testing?", True),
        ("who chairs the NHS Alliance", True),
        ("Who's in charge of the NHS Long Term Plan?", True),
        ("And who said that?", True),
        ("Whose plan would hand power to local leaders?", True),
        ("Which GP leader chairs the NHS Alliance?", True),
        ("Which reader complained about council cuts?", True),
        ("What politician backs regional mayors?", True),
        ("Tell me who wrote the briefing on the plan", True),
        # "who" after the wh-phrase describes someone; the question asks for a length.
        ("How long is the plan, according to the think tank director who criticised it?", False),
        ("Which countries have co-operatives running hospitals?", False),
        ("What number of people visit A&E each year?", False),
        ("What do people think of means-testing?", False),
        ("How many nurses does the NHS employ?", False),
    ],
)
def test_the_wh_phrase_says_whether_a_person_is_wanted(question: str, wants_person: bool) -> None:
    assert asks_for_person(question) is wants_person


def sample_sentence(name_start: str, beginning: str) -> str:
    """The sentence of the sample article named `name_start...` that starts with `beginning`."""
    (path,) = SAMPLE_ARTICLES.glob(f"{name_start}*.txt")
    text = path.read_text(encoding="utf-8")
    (sentence,) = [text[s:e] for s, e in sentence_spans(text) if text[s:e].startswith(beginning)]
    return sentence


@pytest.mark.parametrize(
    ("name", "beginning"),
    [
        ("002", "Health Secretary Andrew Lansley told the conference"),  # title + full name
        ("002", "In his opening remarks the chairman of"),  # "Dr Michael Dixon"
        ("002", "However Mr Mayo said these"),  # honorific + surname
        ("000", "In A Better Plan for the NHS, Health and Care Ed Miliband"),  # after a title
        ("004", "There must be a single, democratically elected, regional"),  # "Andy Burnham"
    ],
)
def test_sample_sentences_that_name_a_person(name: str, beginning: str) -> None:
    assert names_person(sample_sentence(name, beginning))


@pytest.mark.parametrize(
    ("name", "beginning"),
    [
        ("000", "“We had a National Health Service by now"),  # an institution
        ("000", "It was introduced by the Labour Government"),
        ("002", "A one-day conference held at the King’s Fund"),
        ("003", "This is a fundamental perspective that is completely absent from the NHS"),
        ("004", "Even before the pandemic, A&E visits were up 22 per cent"),
        ("002", "He also said that primary care had a very good track"),  # a pronoun names no one
    ],
)
def test_sample_sentences_that_name_no_person(name: str, beginning: str) -> None:
    assert not names_person(sample_sentence(name, beginning))


def test_a_surname_names_a_person_when_it_speaks_mid_sentence() -> None:
    assert names_person("The plan will not work, said Duffy.")
    assert names_person("As Burnham argues, the mayors need more power.")
    assert not names_person("Critics argue that the mayors need more power.")
    assert not names_person("The Labour Party says the mayors need more power.")
