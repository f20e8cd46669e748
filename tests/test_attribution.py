"""Tests for index/attribution.py: who said one sentence of a passage, on the sample corpus
and on small written passages.

A corpus case takes the passage ingest makes (the segment holding a phrase, with its speaker),
finds the sentence holding the phrase as the highlight would cut it, and asks who said it."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.attribution import quote_share, quotes, sentence_speaker
from index.highlight import sentence_spans
from index.people import PersonNames
from index.records import BODY, COMMENT
from ingest.clean import clean
from ingest.load import load_folder
from ingest.segment import segment

ARTICLES_DIR = Path(__file__).parent.parent / "data" / "articles"


@pytest.fixture(scope="module")
def corpus():
    result = load_folder(ARTICLES_DIR)
    return {article.id[:3]: article for article in result.articles}


@pytest.fixture(scope="module")
def people(corpus):
    """The corpus's speakers, as the index knows them."""
    names = set()
    for article in corpus.values():
        names.update(s.speaker for s in segment(article.text, clean(article.text), article.author))
    return PersonNames(name for name in names if name)


def _sentence(text: str, phrase: str) -> tuple[int, int]:
    """The span of the one sentence of `text` that holds `phrase`."""
    at = text.index(phrase)
    spans = [(start, end) for start, end in sentence_spans(text) if start <= at < end]
    assert len(spans) == 1, phrase
    return spans[0]


def _corpus_speaker(corpus, people, key: str, phrase: str, with_section: bool = True) -> str | None:
    article = corpus[key]
    found = [
        s
        for s in segment(article.text, clean(article.text), article.author)
        if phrase in article.text[s.start : s.end]
    ]
    assert len(found) == 1, phrase
    passage = article.text[found[0].start : found[0].end]
    start, end = _sentence(passage, phrase)
    if not with_section:
        return sentence_speaker(passage, start, end, found[0].speaker, people=people)
    return sentence_speaker(
        passage, start, end, found[0].speaker, found[0].section, article.author, people
    )


# --- the sample corpus -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "phrase", "speaker"),
    [
        # The author's granddad's memoir, quoted in an opinion piece: not the author's words.
        ("000", "We had a National Health Service by now", None),
        ("000", "It was introduced by the Labour Government", None),
        # A quotation inside the author's paragraph is the people the text names for it...
        ("000", "our country’s most precious institution", "Ed Miliband and Andy Burnham"),
        # ...while the author's own sentences, next to it and elsewhere, stay his.
        ("000", "This is strong stuff", "Simon Duffy"),
        ("000", "There is no moral case for social care means-testing", "Simon Duffy"),
        ("000", "I agree with you that the previous Labour governments", "Simon Duffy"),
        ("002", "For too long staff and patients", "Andrew Lansley"),
        # A quotation carried on into the next paragraphs keeps its speaker.
        ("002", "I’ve heard from many NHS staff", "Andrew Lansley"),
        ("002", "This is what we mean when we talk about Big Society", "Andrew Lansley"),
        ("002", "Countries like Japan and Spain", "Ed Mayo"),
        ("002", "However there will need to be a radical step forward", "Ed Mayo"),
        ("002", "The devil is in the detail", "Ed Mayo"),
        # A sentence mostly in the reporter's words about him, with a few of his quoted: the
        # reporter's, so no one is named as having said it.
        ("002", "an enormous fan of co-operatives", None),
        # Reported speech ("He also said that …") is the claim of the person named before it.
        ("002", "He also said that primary care had a very good track record", "Michael Dixon"),
        ("002", "walking through wet cement", None),
        # A commenter quoting the policy they reply to: the quotation is not the commenter's.
        ("001", "“Physical and mental health and social care", None),
        ("001", "When I had my kitchen replaced", "Richard Grimes"),
    ],
)
def test_corpus_sentence_speakers(corpus, people, key, phrase, speaker):
    assert _corpus_speaker(corpus, people, key, phrase) == speaker


def test_memoir_in_an_author_passage_is_nobodys(corpus):
    """A passage as an older index cut it: the introduction and the memoir together, all given
    to the author. The memoir's sentences are still nobody's; the introduction is his."""
    text = corpus["000"].text
    start = text.index("In A Better Plan for the NHS")
    end = text.index("The British people like the system")
    passage = text[start:end]
    for phrase, speaker in [
        ("Free medical attention", None),
        ("This was a great innovation", None),
        ("my granddad wrote his memoirs", "Simon Duffy"),
    ]:
        span = _sentence(passage, phrase)
        got = sentence_speaker(passage, *span, "Simon Duffy", BODY, "Simon Duffy")
        assert got == speaker, phrase


def test_a_sentence_is_the_quoted_persons_only_when_most_of_it_is_quotation() -> None:
    mostly = "Ms Roe said: “We will open the clinic at nine and keep it open until late.”"
    partly = "At the launch on Tuesday morning in the town hall Ms Jane Roe called it “a good start”."
    for sentence, speaker in [(mostly, "Jane Roe"), (partly, None)]:
        passage = "Jane Roe runs the clinic.\n" + sentence
        start = passage.index(sentence)
        assert sentence_speaker(passage, start, len(passage), None, BODY, None) == speaker, sentence


def test_without_section_a_passage_keeps_its_speaker_outside_quotation(corpus, people):
    # Not knowing the passage's narrator, a sentence outside quotation keeps the passage's
    # speaker (the segment's), and quotations are still read from the text.
    for key, phrase, speaker in [
        ("002", "He also said that primary", "Michael Dixon"),
        ("002", "I’ve heard from many NHS staff", "Andrew Lansley"),
        ("000", "This is strong stuff", "Simon Duffy"),
        ("000", "our country’s most precious institution", "Ed Miliband and Andy Burnham"),
        ("000", "It was introduced by the Labour Government", None),
    ]:
        assert _corpus_speaker(corpus, people, key, phrase, with_section=False) == speaker


def test_title_and_surname_is_completed_from_the_index_people(corpus, people):
    # "Said Mr Mayo" in a passage that does not give his first name, spoken by no one known.
    passage = "Said Mr Mayo: “Countries like Japan and Spain run hospitals as co-operatives.”"
    span = (0, len(passage))
    assert sentence_speaker(passage, *span, None, BODY, None, people) == "Ed Mayo"
    assert sentence_speaker(passage, *span, None, BODY, None) == "Mr Mayo"


# --- written passages ------------------------------------------------------------------------

AUTHOR = "Kate Author"


def _speaker(
    passage: str, phrase: str, speaker: str | None = AUTHOR, section: str = BODY
) -> str | None:
    return sentence_speaker(passage, *_sentence(passage, phrase), speaker, section, AUTHOR)


@pytest.mark.parametrize(
    ("passage", "quoted"),
    [
        ("The trust was criticised. A spokesperson said: “We will review the figures.”", "We will"),
        ("Staff were tired. “We are stretched every single night,” one nurse told us.", "We are"),
        ('Staff were tired. "We are stretched every single night," one nurse told us.', "We are"),
        ("The council replied in writing. “Every school in the district will reopen.”", "Every"),
    ],
)
def test_a_quotation_whose_speaker_is_not_named_has_none(passage, quoted):
    assert _speaker(passage, quoted) is None
    assert _speaker(passage, passage.split(".")[0]) == AUTHOR  # the author's own sentence


def test_said_after_the_quotation_names_its_speaker():
    passage = "“The ward is full every night this winter,” said Dr Jane Roe. She runs the unit."
    assert _speaker(passage, "The ward is full") == "Jane Roe"  # "Dr Jane Roe" -> her name
    assert _speaker(passage, "She runs the unit") == AUTHOR


def test_he_added_means_the_one_person_named_before():
    passage = (
        "Tom Reid told the meeting: “The budget is gone.” “We need more nurses and more beds,” "
        "he added."
    )
    assert _speaker(passage, "We need more nurses") == "Tom Reid"
    pair = (
        "Ed Miliband and Andy Burnham say “The budget is gone.” “We need more nurses and more "
        "beds,” he added."
    )
    assert _speaker(pair, "We need more nurses") is None  # "he" cannot be both of them


@pytest.mark.parametrize(
    ("passage", "sentence", "speaker"),
    [
        # Reported speech: the claim is the person's the sentence names, or the "he" before it.
        ("Ed Mayo told the conference that mutuals would save money. Few agreed.", "Ed Mayo told", "Ed Mayo"),
        ("Dr Tom Reid admitted to being “a fan”. He also said that the wards were full.", "He also said", "Tom Reid"),
        ("But Mr Mayo said that the plan would fail. The vote was close.", "But Mr Mayo", "Mr Mayo"),
        # An organisation is not a person ("Methodist Church" is no one's name).
        ("The United Methodist Church also believes that war is wrong.", "The United", None),
        # A "he" with no one named before it is nobody, never the author.
        ("The meeting was long. He said that nothing would change.", "He said", None),
        # Not reported speech: the author's own sentence.
        ("Jane Roe said little. The wards were full that winter.", "The wards were full", AUTHOR),
    ],
)
def test_reported_speech_is_the_named_person_s(passage, sentence, speaker):
    assert _speaker(passage, sentence) == speaker


def test_quotation_continued_over_paragraphs_keeps_its_speaker():
    passage = (
        "Jane Roe told the meeting: “Waiting lists have doubled since the spring.\n\n"
        "“Nobody should have to wait a year for a hip operation in this country.”\n\n"
        "The meeting ended late."
    )
    assert _speaker(passage, "Nobody should have to wait") == "Jane Roe"
    assert _speaker(passage, "The meeting ended late") == AUTHOR


def test_colon_line_before_a_quotation_names_or_does_not():
    named = "Health Secretary Jane Roe told the conference:\n“Staff will run their own services.”"
    assert _speaker(named, "Staff will run") == "Jane Roe"
    unnamed = "My grandmother kept a diary, and she wrote:\n“The new clinic opened today at last.”"
    assert _speaker(unnamed, "The new clinic") is None


def test_passage_cut_inside_a_quotation():
    # The chunk begins inside a quotation of the passage's quoted person (its opening mark and
    # attribution are in the previous chunk): the quoted words are hers, what follows is not.
    passage = "waiting lists will fall by the summer.” The council disagreed with her figures."
    assert _speaker(passage, "waiting lists", speaker="Jane Roe") == "Jane Roe"
    assert _speaker(passage, "The council disagreed", speaker="Jane Roe") == AUTHOR


def test_short_quotation_inside_a_sentence_leaves_it_to_the_passage_speaker():
    passage = "The plan promises a “new deal” for carers, but says little about paying for it."
    assert _speaker(passage, "The plan promises") == AUTHOR
    comment = _speaker(passage, "The plan promises", speaker="Jo Bloggs", section=COMMENT)
    assert comment == "Jo Bloggs"


def test_quote_spans_and_share():
    assert [(q.open, q.close) for q in quotes("He said “yes” and “no”.")] == [(8, 12), (18, 21)]
    assert [(q.open, q.close) for q in quotes('a "b" c “d')] == [(2, 4), (8, 10)]
    assert quote_share("“abc”") == (3 / 5, False)
    assert quote_share("said: “abc") == (3 / 10, True)
