"""Split an article into the body and reader comments, and say who speaks in each part.

A speaker is only ever a name the text gives: the article's author (from its metadata) for
the body, the commenter's header ("Richard Grimes says:") for a comment, the person a quote
is attributed to ("Said Mr Mayo: ..." -> Ed Mayo) for quoted speech. Anything else has no
speaker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.attribution import (
    MIN_QUOTE_SHARE,
    OPEN_QUOTE,
    colon_lead_in,
    full_name_in,
    one_person,
    quote_share,
    speaker_in,
)
from index.records import BODY, COMMENT
from ingest.clean import COMMENT_HEADER, Line, furniture_kind

_NUMBERED = re.compile(r"^\s*\d+\.\s+(?=\S)")


@dataclass(frozen=True)
class Segment:
    """A run of article text with one section and one speaker: text[start:end]."""

    start: int
    end: int
    section: str
    speaker: str | None


@dataclass(frozen=True)
class _Part:
    """One kept line with its attribution; `group` tells comments apart."""

    index: int
    start: int
    end: int
    section: str
    speaker: str | None
    group: int = 0


def segment(text: str, lines: list[Line], author: str | None) -> list[Segment]:
    """Body and comment segments covering exactly the kept lines of `lines`."""
    comments_from = _comments_start(lines)
    body = _attribute_body(text, lines, comments_from, author)
    comments = _split_comments(lines, comments_from)
    return _merge(lines, body + comments)


def _comments_start(lines: list[Line]) -> int:
    """Index of the first line of reader comments (len(lines) when there are none).

    Comments start at the first commenter header, or at a numbered item that directly
    follows a comment-section marker ("Comments are closed", "Leave a Reply", "3 comments").
    """
    start = len(lines)
    after_marker = False
    for i, line in enumerate(lines):
        if line.blank:
            continue
        if COMMENT_HEADER.match(line.text):
            return min(start, i)
        if furniture_kind(line.text) == "comments" and not _NUMBERED.match(line.text):
            after_marker = True
            continue
        if line.kept and after_marker and start == len(lines):
            if _NUMBERED.match(line.text):
                start = i
            after_marker = False
    return start


def _split_comments(lines: list[Line], first: int) -> list[_Part]:
    out = []
    speaker: str | None = None
    group = 0
    for index in range(first, len(lines)):
        line = lines[index]
        if not line.kept:
            continue
        header = COMMENT_HEADER.match(line.text)
        if header:
            group += 1
            speaker = header.group("name")
            continue  # the header names the speaker; it is not part of what they said
        skip = 0
        numbered = _NUMBERED.match(line.text)
        if numbered:  # an unnamed comment: "3. There is little doubt ..."
            group += 1
            speaker = None
            skip = numbered.end()
        out.append(_part(index, line, skip, COMMENT, speaker, group))
    return out


def _part(index: int, line: Line, skip: int, section: str, speaker: str | None, group: int) -> _Part:
    """The line's span without leading/trailing whitespace (and `skip` leading characters)."""
    body = line.text[skip:]
    start = line.start + skip + len(body) - len(body.lstrip())
    return _Part(index, start, line.start + len(line.text.rstrip()), section, speaker, group)


def _attribute_body(text: str, lines: list[Line], end: int, author: str | None) -> list[_Part]:
    """Body lines with their speakers: the author's, except quotation. A paragraph that is
    mostly quotation is the quoted person's when the text names them (in it, or in a line
    ending with a colon just before it) and nobody's when it does not ("my granddad wrote
    ...:", "one nurse told us"): quoted words are never the author's by default. One that only
    leaves a quote open is the named person's, else still the author's (most of it is hers).
    A paragraph that opens with a quotation mark after one that left its quote open carries on
    that quotation and keeps its speaker, None included."""
    out = []
    last_named: str | None = None
    quote_open = False  # the previous paragraph left a quote open: this one may continue it
    continuing: str | None = None  # the speaker of that quotation
    continues = False  # the previous paragraph's speaker came from its quotation, not the byline
    previous = ""  # the previous kept paragraph, whose closing colon may introduce a quotation
    for index in range(end):
        line = lines[index]
        if line.blank:
            continue
        if not line.kept:
            quote_open, previous = False, ""
            continue
        named = _quoted_speaker(text, line.text, last_named)
        if named:
            last_named = named
        share, still_open = quote_share(line.text)
        opens_with_quote = line.text.lstrip().startswith(('"', OPEN_QUOTE))
        quotation = True
        if quote_open and continues and opens_with_quote:
            speaker = continuing
        elif named and (share >= MIN_QUOTE_SHARE or still_open):
            speaker = named
        elif share >= MIN_QUOTE_SHARE:
            # A line ending in a colon may introduce it ("Andrew Lansley told the conference:").
            lead_in = colon_lead_in(previous) if opens_with_quote else ""
            speaker = speaker_in(lead_in, full_name_in(text), one_person(last_named))
            last_named = speaker or last_named
        else:
            speaker, quotation = author, False
        continuing, continues, quote_open, previous = speaker, quotation, still_open, line.text
        out.append(_part(index, line, 0, BODY, speaker, 0))
    return out


def _quoted_speaker(article: str, paragraph: str, last_named: str | None) -> str | None:
    """The person this paragraph attributes speech to, resolved to a full name if the article
    has one; for "he added", the one person last named (never a pair: "he" is not two people)."""
    if OPEN_QUOTE not in paragraph and '"' not in paragraph:
        return None
    return speaker_in(paragraph, full_name_in(article), one_person(last_named))


def _merge(lines: list[Line], parts: list[_Part]) -> list[Segment]:
    """Join consecutive lines of one section, speaker and comment into a segment.

    Lines are joined only across blank lines, never across a dropped one, so a segment
    never contains furniture."""
    segments: list[Segment] = []
    previous: _Part | None = None
    for part in parts:
        joinable = (
            previous is not None
            and (previous.section, previous.speaker, previous.group)
            == (part.section, part.speaker, part.group)
            and all(lines[i].blank for i in range(previous.index + 1, part.index))
        )
        if joinable:
            segments[-1] = Segment(segments[-1].start, part.end, part.section, part.speaker)
        else:
            segments.append(Segment(part.start, part.end, part.section, part.speaker))
        previous = part
    return segments
