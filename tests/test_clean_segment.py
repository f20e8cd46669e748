"""Tests for ingest/clean.py and ingest/segment.py on the sample corpus and on written texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.records import BODY, COMMENT
from ingest.clean import clean
from ingest.load import load_folder
from ingest.segment import Segment, segment

ARTICLES_DIR = Path(__file__).parent.parent / "data" / "articles"

FURNITURE_PHRASES = (
    "Your browser is no longer supported",
    "cookies",
    "Subscribe to Blog via Email",
    "other subscribers",
    "Rate this post",
    "Leave a Reply",
    "Comments are closed",
    "Pingback",
    "Follow us on Twitter",
    "Vote count",
)


@pytest.fixture(scope="module")
def corpus():
    result = load_folder(ARTICLES_DIR)
    assert result.skipped == []
    assert len(result.articles) == 5
    return {article.id[:3]: article for article in result.articles}


def _kept_texts(text: str) -> list[str]:
    return [line.text for line in clean(text) if line.kept]


def _segments(article) -> list[Segment]:
    return segment(article.text, clean(article.text), article.author)


def _segment_with(article, phrase: str) -> Segment:
    found = [s for s in _segments(article) if phrase in article.text[s.start : s.end]]
    assert len(found) == 1, f"{phrase!r} is in {len(found)} segments"
    return found[0]


# --- clean: boilerplate ---------------------------------------------------------------------


def test_corpus_kept_lines_contain_no_furniture(corpus):
    for key, article in corpus.items():
        for text in _kept_texts(article.text):
            for phrase in FURNITURE_PHRASES:
                assert phrase.casefold() not in text.casefold(), (key, phrase, text)


def test_corpus_furniture_phrases_are_present_in_raw_text(corpus):
    # The furniture test above is only meaningful if the raw articles contain the furniture.
    raw = "\n".join(article.text for article in corpus.values()).casefold()
    for phrase in FURNITURE_PHRASES:
        assert phrase.casefold() in raw


@pytest.mark.parametrize(
    ("key", "phrase"),
    [
        ("000", "There is no moral case for social care means-testing"),
        ("000", "These are only some weak rays of hope."),
        ("001", "When I had my kitchen replaced"),
        ("002", "Japan and Spain"),
        ("003", "completely absent from the NHS Long Term Plan"),
        ("003", "NHS plan has a massive community shaped hole at its core"),
        ("004", "food and energy security"),
    ],
)
def test_corpus_key_content_lines_are_kept(corpus, key, phrase):
    assert any(phrase in text for text in _kept_texts(corpus[key].text))


_REPEATED = (
    "Hospital waiting lists in the region grew by a fifth last year, and managers say the "
    "shortage of community nurses is the main reason patients stay in beds too long."
)
_MADE_UP_PAGE = f"""Example News

This site uses cookies to improve your experience. By continuing you accept our cookie policy.

Town hall plans new walk-in clinic

The council has agreed to convert the old library on Market Street into a walk-in clinic, with the first patients expected next spring.

{_REPEATED}

Residents at a packed meeting on Tuesday asked whether the clinic would open at weekends, and were told that evening sessions are planned.

Share this:

Sign up for our newsletter

{_REPEATED}

12 Comments

© 2024 Example News. All rights reserved.
"""


def test_unseen_page_furniture_and_repeat_are_dropped_content_kept():
    lines = clean(_MADE_UP_PAGE)
    kept = [line.text for line in lines if line.kept]
    dropped = [line.text for line in lines if line.dropped]
    for furniture in (
        "This site uses cookies to improve your experience. By continuing you accept our cookie policy.",
        "Share this:",
        "Sign up for our newsletter",
        "12 Comments",
        "© 2024 Example News. All rights reserved.",
    ):
        assert furniture in dropped
    assert kept.count(_REPEATED) == 1
    assert [line.dropped for line in lines if line.text == _REPEATED] == [None, "repeat"]
    assert any(t.startswith("The council has agreed to convert the old library") for t in kept)
    assert any(t.startswith("Residents at a packed meeting on Tuesday") for t in kept)


def test_long_paragraph_merely_mentioning_cookies_is_kept():
    paragraph = (
        "The bakery on the corner sold cookies to nurses on the night shift for years, and when "
        "the owner retired the staff clubbed together to buy her a cake of her own. " * 4
    ).strip()
    assert _kept_texts(paragraph) == [paragraph]


# --- offsets --------------------------------------------------------------------------------


def _offset_texts(corpus):
    return [a.text for a in corpus.values()] + [_MADE_UP_PAGE, "  \n\nA.\r\nB\n\n\n"]


def test_clean_lines_slice_back_to_their_text(corpus):
    for text in _offset_texts(corpus):
        lines = clean(text)
        assert lines
        for line in lines:
            assert text[line.start : line.end] == line.text
            assert "\n" not in line.text


def test_segments_are_nonempty_ordered_and_disjoint(corpus):
    for text in _offset_texts(corpus):
        segments = segment(text, clean(text), "Some Author")
        assert segments
        previous_end = 0
        for seg in segments:
            assert text[seg.start : seg.end].strip()
            assert seg.start >= previous_end
            assert seg.start < seg.end
            previous_end = seg.end


def test_segments_contain_no_dropped_line(corpus):
    for article in corpus.values():
        lines = clean(article.text)
        segments = segment(article.text, lines, article.author)
        for line in lines:
            if line.dropped and line.text.strip():
                for seg in segments:
                    assert not (seg.start < line.end and line.start < seg.end), line.text


# --- attribution on the corpus ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "phrase", "section", "speaker"),
    [
        ("001", "kitchen replaced", COMMENT, "Richard Grimes"),
        ("001", "closing day centres", COMMENT, "Richard Grimes"),
        ("001", "There is little doubt that we need the Labour Party", COMMENT, None),
        ("004", "food and energy security", COMMENT, "Stephen Gwynne"),
        ("000", "no moral case for social care means-testing", BODY, "Simon Duffy"),
        # His granddad's memoir, which the text introduces without naming him: nobody's words.
        ("000", "We had a National Health Service by now", BODY, None),
        ("000", "This is surely at the heart of what makes the NHS great", BODY, "Simon Duffy"),
        ("000", "Ed Miliband and Andy Burnham say", BODY, "Simon Duffy"),
        ("000", "infinite supplies of money", COMMENT, None),
        ("000", "I agree with you that the previous Labour governments", COMMENT, "Simon Duffy"),
        ("002", "Japan and Spain", BODY, "Ed Mayo"),
        ("002", "For too long staff and patients", BODY, "Andrew Lansley"),
        ("002", "I’ve heard from many NHS staff", BODY, "Andrew Lansley"),
        ("002", "an enormous fan of co-operatives", BODY, "Michael Dixon"),
        ("002", "The devil is in the detail", BODY, "Ed Mayo"),
        ("002", "Right to Provide", BODY, None),
        ("003", "completely absent from the NHS Long Term Plan", BODY, "Adam Lent"),
    ],
)
def test_corpus_section_and_speaker(corpus, key, phrase, section, speaker):
    seg = _segment_with(corpus[key], phrase)
    assert (seg.section, seg.speaker) == (section, speaker)


def test_two_comments_by_same_person_stay_separate(corpus):
    article = corpus["001"]
    first = _segment_with(article, "kitchen replaced")
    second = _segment_with(article, "closing day centres")
    assert first != second


def test_pingbacks_are_in_no_segment(corpus):
    article = corpus["001"]
    covered = "".join(article.text[s.start : s.end] for s in _segments(article))
    assert "Pingback" in article.text
    assert "Pingback" not in covered
    assert "The So-What issue" not in covered


def test_comment_headers_are_not_part_of_segments(corpus):
    article = corpus["001"]
    for seg in _segments(article):
        assert "Richard Grimes says" not in article.text[seg.start : seg.end]


# --- attribution on written texts ------------------------------------------------------------


def test_written_comments_get_their_headers_speakers():
    text = (
        "The new clinic opened on Monday after two years of delays and a long public consultation.\n"
        "\n"
        "3 Comments\n"
        "\n"
        "Jane Smith says:\n"
        "Great news, my mother has waited months for a local appointment.\n"
        "\n"
        "Bob Jones says:\n"
        "I hope they hire enough staff to keep it open in the evenings.\n"
    )
    segments = segment(text, clean(text), "Kate Author")
    got = [(s.section, s.speaker, text[s.start : s.end]) for s in segments]
    assert got == [
        (BODY, "Kate Author", "The new clinic opened on Monday after two years of delays and a long public consultation."),
        (COMMENT, "Jane Smith", "Great news, my mother has waited months for a local appointment."),
        (COMMENT, "Bob Jones", "I hope they hire enough staff to keep it open in the evenings."),
    ]


def test_numbered_list_without_comment_marker_stays_in_body():
    text = (
        "The report makes two recommendations for ministers.\n"
        "1. First point: fund community nursing properly for the next decade.\n"
        "2. Second point: give councils a real say over local health budgets.\n"
        "Both would take years to show results.\n"
    )
    segments = segment(text, clean(text), "Kate Author")
    assert all((s.section, s.speaker) == (BODY, "Kate Author") for s in segments)
    covered = "".join(text[s.start : s.end] for s in segments)
    assert "1. First point" in covered and "2. Second point" in covered


def test_body_without_author_or_quote_has_no_speaker():
    text = "Ministers announced a review of hospital parking charges on Friday.\n"
    assert [(s.section, s.speaker) for s in segment(text, clean(text), None)] == [(BODY, None)]


def _speakers(text: str) -> list[tuple[str | None, str]]:
    """(speaker, first words) of each segment of a written body by Kate Author."""
    return [(s.speaker, text[s.start : s.end][:24]) for s in segment(text, clean(text), "Kate Author")]


def test_quotation_without_a_named_speaker_is_nobodys_not_the_authors():
    text = (
        "The ward was full again on Tuesday night, the third time this month.\n\n"
        "One nurse told us:\n\n"
        "“We are stretched to breaking point. Patients wait on trolleys in the corridor for "
        "hours, and there is nobody to move them.\n\n"
        "“As Tom Reid said last year, nobody should have to cry in the car park after a shift.”\n\n"
        "The trust said it was recruiting more staff for the winter, and agency use would fall.\n"
    )
    # The quotation continues into its second paragraph and stays nobody's, though a name is
    # said inside it; the author's next paragraph is hers again.
    assert _speakers(text) == [
        ("Kate Author", "The ward was full again "),
        (None, "“We are stretched to bre"),
        ("Kate Author", "The trust said it was re"),
    ]


def test_colon_line_naming_the_speaker_gives_them_the_quotation():
    text = (
        "Health Secretary Jane Roe told the conference:\n\n"
        "“Staff will run their own services from April, and patients will choose who treats "
        "them.”\n\n"
        "Unions said they would study the detail before giving the plan their support.\n"
    )
    assert _speakers(text) == [
        ("Kate Author", "Health Secretary Jane Ro"),
        ("Jane Roe", "“Staff will run their ow"),
        ("Kate Author", "Unions said they would s"),
    ]


def test_short_quotation_in_the_authors_paragraph_stays_hers():
    text = (
        "The minister promised “a new deal” for carers, but the budget for it has not been set "
        "and councils say they cannot plan the next year without it.\n"
    )
    assert _speakers(text) == [("Kate Author", "The minister promised “a")]
