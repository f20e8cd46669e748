"""Who said a sentence: the person the text says is speaking, or nobody.

A passage's speaker (ingest/segment.py) is decided paragraph by paragraph, so a paragraph of
the author's can still hold someone else's words: "Ed Miliband and Andy Burnham say “The NHS
is our country’s most precious institution...”" sits in Simon Duffy's paragraph, and showing
that sentence as "— Simon Duffy" puts words in his mouth. `sentence_speaker` reads the one
sentence a short answer shows: a sentence that is quotation belongs to the person the text
names for that quotation right there, or to nobody. It never falls back to the author, and it
never guesses a name the text does not give ("my granddad", "a spokesperson").

The attribution patterns here are also the ones ingest/segment.py uses to give a paragraph of
quotation its speaker, so a paragraph and the sentences in it are read the same way (they live
in `index` because `ingest` depends on `index`, never the reverse). Regular expressions, no
model: this runs on every answered query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from index.people import PersonNames
from index.records import BODY

TITLES = r"(?:Mr|Mrs|Ms|Miss|Dr|Prof|Professor|Sir|Dame|Lord|Lady|Baroness|Cllr|Rev)"
TITLE_RE = re.compile(rf"^{TITLES}\.?$")
CAP = r"[A-Z][a-z’'\-]+"
_RUN = rf"(?:{TITLES}\.?\s+)?{CAP}(?:\s+{CAP})*"
_VERBS = (
    r"(?:say|says|said|told|tells|add|adds|added|admit|admits|admitted|argue|argues|argued|warn|"
    r"warns|warned|explain|explains|explained|claim|claims|claimed|insist|insists|insisted|note|"
    r"notes|noted|state|states|stated|believe|believes|believed|urge|urges|urged|suggest|suggests|"
    r"suggested|acknowledge|acknowledged|concede|conceded|continue|continued|conclude|concluded|"
    r"declare|declared|write|writes|wrote)"
)
# "Said Mr Mayo:" (speech verb first)
VERB_FIRST = re.compile(rf"\b[Ss]aid\s+(?P<name>{_RUN})")
# "Health Secretary Andrew Lansley told", "Ed Miliband and Andy Burnham say"
NAME_FIRST = re.compile(
    rf"(?P<name>(?:{_RUN}\s+and\s+)?{_RUN})(?:,[^,“”\"]{{1,80}},)?\s+"
    rf"(?:has\s+|had\s+|also\s+)?{_VERBS}\b"
)
# "he added", "She also said"
PRONOUN = re.compile(rf"\b(?:[Hh]e|[Ss]he)\s+(?:also\s+)?{_VERBS}\b")
# Reported speech opening a sentence: "He also said that …", "Mr Mayo told the conference that …".
# The sentence's claim is then the named person's, though it is not in quotation marks.
REPORTED = re.compile(
    rf"^(?:(?:But|And|However|Yet),?\s+)?(?P<who>{_RUN})\s+(?:also\s+|has\s+|had\s+)?{_VERBS}\s+"
    rf"(?:[\w’'\-]+\s+){{0,4}}?that\b"
)
OPEN_QUOTE, CLOSE_QUOTE = "“", "”"
_QUOTE_MARK = re.compile(f'[{OPEN_QUOTE}{CLOSE_QUOTE}"]')
# A paragraph is the quoted person's when quotation makes up this much of it (its passages are
# searched under their name: a third already makes the paragraph about what they said).
MIN_QUOTE_SHARE = 1 / 3
# A sentence shown with a speaker must be that person's words: most of it inside quotation
# marks. "Dr Michael Dixon admitted to being “an enormous fan of co-operatives”" is the
# reporter's sentence about him, not something he said.
SENTENCE_QUOTE_SHARE = 1 / 2
# A sentence ends at . ! ? followed by a space or the end; text after it is another sentence's.
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")

FullName = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Quote:
    """One quotation in a paragraph: its marks at `open` and `close` (paragraph offsets).

    `open` is -1 for a quotation that began before the paragraph (the text starts inside it),
    `close` is the paragraph's length for one left open (it continues in the next paragraph).
    The quoted words are paragraph[open + 1 : close]."""

    open: int
    close: int


def quotes(paragraph: str, starts_inside: bool = False) -> list[Quote]:
    """The quotations of one paragraph, in order.

    “ opens and ” closes; a straight " opens when outside a quotation and closes when inside
    (the only reading it allows). Single quotes are left alone: ’ is mostly an apostrophe and
    ‘…’ marks scare quotes ("the ‘reform’ of the NHS"), not speech. `starts_inside`: the text
    begins inside a quotation (a passage cut from the middle of a quoted paragraph)."""
    found = []
    opened: int | None = -1 if starts_inside else None
    for mark in _QUOTE_MARK.finditer(paragraph):  # the marks only: this runs on every answer
        position, char = mark.start(), mark.group(0)
        if char == OPEN_QUOTE or (char == '"' and opened is None):
            if opened is None:
                opened = position
        elif char == CLOSE_QUOTE or (char == '"' and opened is not None):
            if opened is not None:
                found.append(Quote(opened, position))
                opened = None
    if opened is not None:
        found.append(Quote(opened, len(paragraph)))
    return found


def quote_share(paragraph: str) -> tuple[float, bool]:
    """Share of the paragraph's characters inside quotation marks, and whether a quote is left
    open (the quotation goes on in the next paragraph)."""
    found = quotes(paragraph)
    inside = sum(q.close - q.open - 1 for q in found)
    still_open = bool(found) and found[-1].close == len(paragraph)
    return inside / max(len(paragraph.strip()), 1), still_open


def full_name_in(text: str) -> FullName:
    """Looks up the full name `text` gives for a surname: "Mayo" -> "Ed Mayo" when the text
    says "Ed Mayo" anywhere (a title before the surname is not a first name)."""

    def look_up(surname: str) -> str | None:
        for match in re.finditer(rf"\b({CAP})\s+{re.escape(surname)}\b", text):
            if not TITLE_RE.match(match.group(1)):
                return f"{match.group(1)} {surname}"
        return None

    return look_up


def person_name(run: str, full_name: FullName) -> str | None:
    """The person a run of capitalised words names, or None when it names no one for sure.

    "Health Secretary Andrew Lansley" -> "Andrew Lansley" (the last two words); "However Mr
    Mayo" -> the full name `full_name` finds for Mayo, else "Mr Mayo"; "Ed Miliband and Andy
    Burnham" -> both; one capitalised word ("Labour says") names no person, nor does a run
    that opens with "The" ("The United Methodist Church believes that")."""
    if " and " in run:
        names = [person_name(part, full_name) for part in run.split(" and ")]
        return " and ".join(name for name in names if name) if all(names) else None
    tokens = run.split()
    if tokens[0] == "The":
        return None
    titled = [i for i, token in enumerate(tokens) if TITLE_RE.match(token)]
    if titled:
        tokens = tokens[titled[-1] :]  # "However Mr Mayo" -> "Mr Mayo"
        if len(tokens) < 2:
            return None
        return full_name(tokens[-1]) or " ".join(tokens)
    if len(tokens) < 2:
        return None
    return " ".join(tokens[-2:])


def named_speaker(text: str, full_name: FullName) -> str | None:
    """The person `text` says is speaking, by name ("Said Mr Mayo", "Andrew Lansley told"),
    or None. A speech verb before the name is the surer sign, so it is tried first."""
    for pattern in (VERB_FIRST, NAME_FIRST):
        for match in pattern.finditer(text):
            name = person_name(match.group("name"), full_name)
            if name:
                return name
    return None


def one_person(name: str | None) -> str | None:
    """`name` when it is one person, for a "he" or "she" to refer to; "Ed Miliband and Andy
    Burnham" cannot be what a later "he said" means."""
    return name if name and " and " not in name else None


def colon_lead_in(paragraph: str) -> str:
    """The last sentence of a paragraph that ends with a colon (it introduces the quotation
    the next paragraph opens with: "...he describes coming home from the war:"), else ""."""
    stripped = paragraph.rstrip()
    return _last_sentence(stripped) if stripped.endswith(":") else ""


# --- one sentence of a passage ----------------------------------------------------------------


@dataclass(frozen=True)
class _Paragraph:
    start: int  # offset of the paragraph in the passage
    text: str
    quotes: list[Quote]


def sentence_speaker(
    passage_text: str,
    start: int,
    end: int,
    passage_speaker: str | None,
    section: str | None = None,
    author: str | None = None,
    people: PersonNames | None = None,
) -> str | None:
    """Who said `passage_text[start:end]`, as far as the text names them.

    A sentence that is quotation (at least half of it inside quotation marks) is the words of the person the text attributes that quotation to
    right there: before it in its sentence ("Ed Miliband and Andy Burnham say “…”", "Said Mr
    Mayo: “…"), just after it ("“…,” he added"), in the line a colon ends before it, or as the
    paragraph a quotation left open continues. When the text names no one there it is the
    passage speaker's only if that speaker is a quoted person (the passage was given to them
    for its quotation); otherwise None, never the author by default.

    A sentence outside quotation that reports speech ("He also said that …", "Mr Mayo told
    the conference that …") is the claim of the person it names, a "he" or "she" being the one
    person named last before it in the passage (nobody when none is: never the author by
    default). Any other sentence outside quotation is the
    words of whoever speaks outside quotation marks in the passage: the author in the body
    (`section` BODY with the article's `author`), the commenter in a comment. Without
    `section` the passage is taken to be in its speaker's own voice, so such a sentence keeps
    `passage_speaker`.

    `people` (the index's speakers) completes "Mr Mayo" to "Ed Mayo" when the passage does
    not give the full name."""
    narrator = author if section == BODY else passage_speaker
    quoted_person = passage_speaker if passage_speaker != narrator else None
    full_name = _full_name(passage_text, passage_speaker, people)
    paragraphs = _paragraphs(passage_text)
    main = _main_quote(passage_text, paragraphs, start, end)
    if main is None:
        if not REPORTED.match(passage_text[start:end].strip()):
            return narrator
        he = _last_named(passage_text[:start], full_name) or one_person(quoted_person)
        return reported_speaker(passage_text[start:end], full_name, he)
    return _quote_speakers(paragraphs, full_name, quoted_person, main) or quoted_person


def reported_speaker(sentence: str, full_name: FullName, he: str | None) -> str | None:
    """The person a sentence of reported speech names as its source ("Ed Mayo said that …";
    for "He also said that …", `he`), or None for any other sentence."""
    match = REPORTED.match(sentence.strip())
    if match is None:
        return None
    who = match.group("who")
    return he if who.lower() in {"he", "she"} else person_name(who, full_name)


def _last_named(text: str, full_name: FullName) -> str | None:
    """The one person `text` last names as speaking ("Dr Michael Dixon admitted …"), or None."""
    found = None
    for pattern in (VERB_FIRST, NAME_FIRST):
        for match in pattern.finditer(text):
            name = person_name(match.group("name"), full_name)
            if name and (found is None or match.start() > found[0]):
                found = (match.start(), name)
    return one_person(found[1]) if found else None


def _paragraphs(text: str) -> list[_Paragraph]:
    """The passage's non-blank lines with their quotations. A passage whose first quotation
    mark is a closing one was cut from inside a quotation: its first line starts inside it."""
    first_curly = re.search(f"[{OPEN_QUOTE}{CLOSE_QUOTE}]", text)
    inside = first_curly is not None and first_curly.group(0) == CLOSE_QUOTE
    out = []
    offset = 0
    for line in text.split("\n"):
        if line.strip():
            out.append(_Paragraph(offset, line, quotes(line, starts_inside=inside and not out)))
        offset += len(line) + 1
    return out


def _main_quote(
    text: str, paragraphs: list[_Paragraph], start: int, end: int
) -> tuple[int, int] | None:
    """(paragraph index, quote index) of the quotation that holds most of the sentence, when
    quotation (all of it together) makes up at least SENTENCE_QUOTE_SHARE of its characters; None
    for a sentence outside quotation."""
    best, best_inside, total = None, 0, 0
    for p, paragraph in enumerate(paragraphs):
        for q, quote in enumerate(paragraph.quotes):
            first = paragraph.start + quote.open + 1
            last = paragraph.start + quote.close
            inside = max(0, min(end, last) - max(start, first))
            total += inside
            if inside > best_inside:
                best, best_inside = (p, q), inside
    return best if total / max(len(text[start:end].strip()), 1) >= SENTENCE_QUOTE_SHARE else None


def _quote_speakers(
    paragraphs: list[_Paragraph],
    full_name: FullName,
    quoted_person: str | None,
    wanted: tuple[int, int],
) -> str | None:
    """Who the passage says spoke quotation `wanted` ((paragraph, quote) indices), read in
    order from the start so that a "he added" means the one person named last before it (at
    first the passage's quoted person, if it has one)."""
    speakers: dict[tuple[int, int], str | None] = {}
    he = one_person(quoted_person)
    for p, paragraph in enumerate(paragraphs):
        for q in range(len(paragraph.quotes)):
            speakers[(p, q)] = _attribution(paragraphs, p, q, full_name, he, speakers)
            if (p, q) == wanted:
                return speakers[(p, q)]
            if speakers[(p, q)]:  # after a pair ("Ed Miliband and Andy Burnham"), no "he"
                he = one_person(speakers[(p, q)])
    return None


def _attribution(
    paragraphs: list[_Paragraph],
    p: int,
    q: int,
    full_name: FullName,
    he: str | None,
    earlier: dict[tuple[int, int], str | None],
) -> str | None:
    """The person the passage attributes quotation `q` of paragraph `p` to, or None: named
    before it in its sentence, else just after it in the same sentence, else (for a paragraph
    that opens with it) the speaker of the quotation the previous paragraph left open, or the
    person the previous paragraph's closing colon introduces. `earlier` holds the speakers of
    the quotations before it."""
    paragraph = paragraphs[p]
    quote = paragraph.quotes[q]
    if quote.open < 0:
        return None  # it began before the passage: who said it is not in this text
    before = paragraph.text[paragraph.quotes[q - 1].close + 1 if q else 0 : quote.open]
    named = speaker_in(_last_sentence(before), full_name, he)
    if named:
        return named
    if quote.close < len(paragraph.text) and not _ends_sentence(paragraph.text[: quote.close]):
        following = paragraph.quotes[q + 1].open if q + 1 < len(paragraph.quotes) else None
        tail = _first_sentence(paragraph.text[quote.close + 1 : following])
        named = speaker_in(tail, full_name, he)
        if named:
            return named
    if before.strip() or p == 0:
        return None
    previous = paragraphs[p - 1]
    if previous.quotes and previous.quotes[-1].close == len(previous.text):
        # A paragraph opening with “ after one left open carries on the same quotation.
        return earlier[(p - 1, len(previous.quotes) - 1)]
    last_close = previous.quotes[-1].close + 1 if previous.quotes else 0
    return speaker_in(colon_lead_in(previous.text[last_close:]), full_name, he)


def speaker_in(text: str, full_name: FullName, he: str | None) -> str | None:
    """The person an attribution clause names ("said Mr Mayo"), or for a pronoun in it ("he
    added") `he`, the one person it can refer to (`one_person`)."""
    if not text.strip():
        return None
    named = named_speaker(text, full_name)
    if named:
        return named
    return he if PRONOUN.search(text) else None


def _ends_sentence(text: str) -> bool:
    """Whether quoted words end their sentence (“…achievement.”): nothing after the closing
    mark then belongs to it, as the highlight splits there too."""
    return text.rstrip()[-1:] in {".", "!", "?", "…"}


def _last_sentence(text: str) -> str:
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[ends[-1] if ends else 0 :]


def _first_sentence(text: str) -> str:
    match = _SENTENCE_END.search(text)
    return text[: match.end()] if match else text


def _full_name(
    passage_text: str, passage_speaker: str | None, people: PersonNames | None
) -> FullName:
    """Completes a surname from the passage's own words, then from its speaker, then from the
    index's people when exactly one of them has that surname (two would be a guess)."""
    in_passage = full_name_in(passage_text)
    in_speaker = full_name_in(passage_speaker or "")

    def look_up(surname: str) -> str | None:
        found = in_passage(surname) or in_speaker(surname)
        if found or people is None:
            return found
        known = people.mentioned(surname)
        return known[0] if len(known) == 1 else None

    return look_up
