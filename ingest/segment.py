"""Split an article into the body and reader comments, and say who speaks in each part.

A speaker is only ever a name the text gives: the article's author (from its metadata) for
the body, the commenter's header ("Richard Grimes says:") for a comment, the person a quote
is attributed to ("Said Mr Mayo: ..." -> Ed Mayo) for quoted speech. Anything else has no
speaker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.records import BODY, COMMENT
from ingest.clean import COMMENT_HEADER, Line, furniture_kind

_NUMBERED = re.compile(r"^\s*\d+\.\s+(?=\S)")
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Dr|Prof|Professor|Sir|Dame|Lord|Lady|Baroness|Cllr|Rev)"
_TITLE_RE = re.compile(rf"^{_TITLES}\.?$")
_CAP = r"[A-Z][a-z’'\-]+"
_RUN = rf"(?:{_TITLES}\.?\s+)?{_CAP}(?:\s+{_CAP})*"
_VERBS = (
    r"(?:say|says|said|told|tells|add|adds|added|admit|admits|admitted|argue|argues|argued|warn|"
    r"warns|warned|explain|explains|explained|claim|claims|claimed|insist|insists|insisted|note|"
    r"notes|noted|state|states|stated|believe|believes|believed|urge|urges|urged|suggest|suggests|"
    r"suggested|acknowledge|acknowledged|concede|conceded|continue|continued|conclude|concluded|"
    r"declare|declared|write|writes|wrote)"
)
# "Said Mr Mayo:" (speech verb first)
_VERB_FIRST = re.compile(rf"\b[Ss]aid\s+(?P<name>{_RUN})")
# "Health Secretary Andrew Lansley told", "Ed Miliband and Andy Burnham say"
_NAME_FIRST = re.compile(
    rf"(?P<name>(?:{_RUN}\s+and\s+)?{_RUN})(?:,[^,“”\"]{{1,80}},)?\s+(?:has\s+|had\s+|also\s+)?{_VERBS}\b"
)
# "he added", "She also said"
_PRONOUN = re.compile(rf"\b(?:[Hh]e|[Ss]he)\s+(?:also\s+)?{_VERBS}\b")
_OPEN_QUOTES, _CLOSE_QUOTES = "“", "”"
_MIN_QUOTE_SHARE = 1 / 3  # a paragraph is the quoted person's when quotes make up this much


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
    out = []
    last_named: str | None = None
    quote_open = False  # the previous paragraph left a quote open: this one continues it
    continuing: str | None = None
    for index in range(end):
        line = lines[index]
        if line.blank:
            continue
        if not line.kept:
            quote_open = False
            continue
        named = _quoted_speaker(text, line.text, last_named)
        if named:
            last_named = named
        share, still_open = _quote_share(line.text)
        speaker = author
        if quote_open and continuing and line.text.lstrip().startswith(('"', _OPEN_QUOTES)):
            speaker = continuing
        elif named and (share >= _MIN_QUOTE_SHARE or still_open):
            speaker = named
        continuing = speaker if speaker != author else None
        quote_open = still_open
        out.append(_part(index, line, 0, BODY, speaker, 0))
    return out


def _quoted_speaker(article: str, paragraph: str, last_named: str | None) -> str | None:
    """The person this paragraph attributes speech to, resolved to a full name if the article has one."""
    if _OPEN_QUOTES not in paragraph and '"' not in paragraph:
        return None
    for pattern in (_VERB_FIRST, _NAME_FIRST):
        for match in pattern.finditer(paragraph):
            name = _person_name(article, match.group("name"))
            if name:
                return name
    if _PRONOUN.search(paragraph):
        return last_named
    return None


def _person_name(article: str, run: str) -> str | None:
    if " and " in run:
        names = [_person_name(article, part) for part in run.split(" and ")]
        return " and ".join(names) if all(names) else None
    tokens = run.split()
    titled = [i for i, token in enumerate(tokens) if _TITLE_RE.match(token)]
    if titled:
        tokens = tokens[titled[-1] :]  # "However Mr Mayo" -> "Mr Mayo"
        surname = tokens[-1] if len(tokens) > 1 else None
        if surname is None:
            return None
        # "Mr Mayo" is Ed Mayo when the article names him in full.
        for match in re.finditer(rf"\b({_CAP})\s+{re.escape(surname)}\b", article):
            if not _TITLE_RE.match(match.group(1)):
                return f"{match.group(1)} {surname}"
        return " ".join(tokens)
    if len(tokens) < 2:
        return None  # one capitalised word ("Labour says") is not enough to name a person
    return " ".join(tokens[-2:])  # "Health Secretary Andrew Lansley" -> "Andrew Lansley"


def _quote_share(paragraph: str) -> tuple[float, bool]:
    """Share of characters inside quotation marks, and whether a quote is left open."""
    inside = 0
    depth = False
    for char in paragraph:
        if char == _OPEN_QUOTES or (char == '"' and not depth):
            depth = True
        elif char == _CLOSE_QUOTES or (char == '"' and depth):
            depth = False
        elif depth:
            inside += 1
    return (inside / max(len(paragraph.strip()), 1), depth)


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
