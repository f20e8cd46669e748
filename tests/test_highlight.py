"""A short answer is a sentence that answers (index/sentences.py, index/highlight.py): never a
heading, a byline, a credit line, a list's number, a question, a caption or a scrap of a few
words, on the sample articles' own lines and on small texts written here."""

from __future__ import annotations

import pytest

from index.answer_type import holds_quantity
from index.highlight import answer_sentence, best_sentence, sentence_spans, stands_alone
from index.lexical import analyse
from index.search import Searcher
from index.sentences import can_be_answer, why_not_an_answer
from tests.conftest import SAMPLE_ARTICLES


def article(name_start: str) -> str:
    """The text of the sample article whose file name starts with `name_start`."""
    (path,) = SAMPLE_ARTICLES.glob(f"{name_start}*.txt")
    return path.read_text(encoding="utf-8")


def span_of(text: str, beginning: str) -> tuple[int, int]:
    """The span of the sentence of `text` that starts with `beginning`."""
    found = [(s, e) for s, e in sentence_spans(text) if text[s:e].startswith(beginning)]
    assert found, f"no sentence starts with {beginning!r}"
    return found[0]


def verdict(text: str, beginning: str) -> str | None:
    """Why the sentence starting with `beginning` cannot answer, read as the highlight reads it."""
    start, end = span_of(text, beginning)
    return why_not_an_answer(text[start:end], stands_alone(text, start, end))


def weights(question: str) -> dict[str, float]:
    """The question's analysed terms, each of weight one."""
    return dict.fromkeys(analyse([question])[0], 1.0)


@pytest.mark.parametrize(
    ("name", "beginning", "reason"),
    [
        ("003", "Adam Lent, director, New Local Government Network", "heading or byline"),
        ("003", "A guest briefing on the NHS Long Term Plan by New Local", "credit line"),
        ("003", "NHS plan has a massive community shaped hole at its core", "heading or byline"),
        ("001", "Prevention and intervention", "too short"),
        ("001", "Health inequalities", "too short"),
        ("001", "Integration at the heart of the service", "heading or byline"),
        ("002", "Health Secretary bids to give power to NHS staff", "heading or byline"),
        ("000", "What is the best we can hope for from the new Government", "question"),
        ("004", "So how do we get ‘the best NHS?’", "question"),
        ("004", "Why?", "question"),
    ],
)
def test_the_sample_s_non_answers_are_refused(name: str, beginning: str, reason: str) -> None:
    assert verdict(article(name), beginning) == reason


@pytest.mark.parametrize(
    ("name", "beginning"),
    [
        # Lost its full stop, but ends a paragraph of prose rather than standing alone.
        ("001", "Community health councils were very popular and should be reintroduced"),
        ("004", "Even before the pandemic, A&E visits were up 22 per cent over the last nine"),
        ("004", "It has as much of an emphasis on keeping the population healthy"),
        ("002", "Health Secretary Andrew Lansley told the conference:"),
        ("003", "The rambling 136-page strategy reveals an organisation"),
    ],
)
def test_the_sample_s_statements_are_kept(name: str, beginning: str) -> None:
    assert verdict(article(name), beginning) is None


def test_a_list_s_number_is_no_sentence_and_does_not_open_its_item() -> None:
    text = article("004")
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert not [s for s in sentences if s.rstrip(".)").isdigit()]
    assert any(s.startswith("If we are to improve the health of the nation") for s in sentences)
    assert any(s.startswith("Regional democratic legitimacy is important.") for s in sentences)
    listed = "Two aims:\n1) Keep people well at home.\n(a) Fund the councils properly.\n2. Done."
    assert [listed[s:e] for s, e in sentence_spans(listed)] == [
        "Two aims:", "Keep people well at home.", "Fund the councils properly.", "Done.",
    ]


@pytest.mark.parametrize(
    "sentence",
    [
        "Photo: Jane Roe/Reuters",
        "Image credit Getty Images via the archive",
        "(Picture: PA Wire, London, 2019)",
        "Photograph by Jane Roe for the paper.",
        "Main image – nurses on a ward in Leeds",
        "Credit: the author, with thanks to the trust",
    ],
)
def test_captions_are_refused(sentence: str) -> None:
    assert why_not_an_answer(sentence) == "caption"


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("2.", "list marker"),
        ("(a)", "list marker"),
        ("iv)", "list marker"),
        ("Costs rose sharply.", "too short"),
        ("Will the council pay for the new clinic?", "question"),
        ("“Who will pay for it all?”", "question"),
        ("By Jane Roe, health correspondent", "credit line"),
        ("An analysis of the budget by health economist Jane Roe.", "credit line"),
        ("Ten Ways To Fix The NHS Before Winter", "heading or byline"),
        ("Jane Roe, Chief Executive, The King's Fund", "heading or byline"),
    ],
)
def test_written_non_answers_are_refused(sentence: str, reason: str) -> None:
    assert why_not_an_answer(sentence) == reason


@pytest.mark.parametrize(
    "sentence",
    [
        "Costs rose sharply last year.",
        "Picture this: a ward with no nurses on it at all.",
        "Images of the ward were shared widely online.",
        "By giving staff real control we restore the balance of power.",
        "The review was written by health economist Jane Roe.",
        "Ed Miliband and Andy Burnham back the plan.",
        "The question is who will pay for it.",
    ],
)
def test_written_statements_are_kept(sentence: str) -> None:
    assert can_be_answer(sentence)


def test_a_heading_is_refused_by_its_shape_but_hard_wrapped_prose_is_not() -> None:
    headed = "Funding the plan\n\nCouncils will pay for the new clinics from next year."
    assert verdict(headed, "Funding the plan") == "too short"
    headed = "How councils will pay for the new clinics\n\nThe money comes from the levy."
    assert verdict(headed, "How councils will pay") == "heading or byline"
    wrapped = "Councils will pay for the new clinics from\nnext year, the minister said."
    assert verdict(wrapped, "Councils will pay for the new clinics from") is None


def test_the_highlight_passes_over_a_heading_and_a_credit_line() -> None:
    text = article("003")
    start = text.index("NHS plan has a massive community shaped hole")
    passage = text[start : text.index("Maybe they should have asked")]
    question = weights("Does the NHS Long Term Plan have a community shaped hole?")
    chosen = best_sentence(passage, question)
    sentence = passage[chosen.start : chosen.end]
    assert can_be_answer(sentence, stands_alone(passage, chosen.start, chosen.end))
    assert not sentence.startswith(("NHS plan has a massive", "A guest briefing"))
    answer = answer_sentence(passage, question)
    assert answer is not None and passage[answer.start : answer.end] == sentence


def test_the_byline_is_no_answer_to_who_the_director_is() -> None:
    text = article("003")
    passage = text[text.index("Instead, we have a document") : text.index("Have your say")]
    question = weights("Who is the director of the New Local Government Network?")
    chosen = best_sentence(passage, question)
    assert not passage[chosen.start : chosen.end].startswith("Adam Lent, director")
    answer = answer_sentence(passage, question)
    assert answer is not None and answer == chosen  # it shares "new", nothing more
    # With only the byline and furniture left, the highlight has to take the byline, but
    # there is no short answer.
    tail = text[text.index("Adam Lent, director") : text.index("Have your say")]
    chosen = best_sentence(tail, question)
    assert tail[chosen.start : chosen.end] == "Adam Lent, director, New Local Government Network"
    assert answer_sentence(tail, question) is None


def test_a_passage_of_non_answers_keeps_a_highlight_but_gives_no_answer() -> None:
    passage = "Health inequalities\n\nWhat causes health inequalities?\n\n2."
    question = weights("What causes health inequalities?")
    chosen = best_sentence(passage, question)
    assert passage[chosen.start : chosen.end] == "What causes health inequalities?"
    assert answer_sentence(passage, question) is None


def test_without_question_terms_the_first_answering_sentence_is_highlighted() -> None:
    passage = "Prevention and intervention\n\nPreventive services should always be prioritised."
    chosen = best_sentence(passage, {})
    assert passage[chosen.start : chosen.end] == "Preventive services should always be prioritised."
    assert answer_sentence(passage, {}) is None


def test_the_answer_must_share_a_question_term_and_pass_the_answer_type() -> None:
    text = article("004")
    passage = text[text.index("Why? Because") : text.index("This leads to radically")]
    figure = answer_sentence(passage, weights("How many A&E visits were there?"), holds_quantity)
    assert figure is not None
    assert passage[figure.start : figure.end].startswith("Even before the pandemic, A&E visits")
    assert answer_sentence(passage, weights("Which hospitals have co-operatives?")) is None


@pytest.mark.parametrize(
    "question",
    [
        "Who is the director of the New Local Government Network?",
        "What are the causes of health inequalities?",
        "Which regional authority should run NHS services?",
        "Why does the NHS plan have a community shaped hole?",
    ],
)
def test_served_highlights_are_answering_sentences(searcher: Searcher, question: str) -> None:
    # What the widget marks and the short answer quotes: an answering sentence wherever the
    # passage holds one.
    def answers(text: str, start: int, end: int) -> bool:
        return can_be_answer(text[start:end], stands_alone(text, start, end))

    for passage in searcher.search(question, top_k=5).passages:
        text, h = passage.chunk.text, passage.highlight
        has_one = any(answers(text, s, e) for s, e in sentence_spans(text))
        assert answers(text, h.start, h.end) or not has_one
