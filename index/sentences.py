"""Whether a sentence of an article can be shown as an answer, read from its own text and shape.

A passage that matches a question well still holds sentences that answer nothing: its
heading, the byline, a credit line, a photo caption, a list's number, a question the writer
asks. They share the question's words as much as any sentence (a heading is the article's
topic in a few words), so the highlight picked them and readers were shown "2." or "Adam
Lent, director, New Local Government Network" as answers. Each rule below is a shape such
lines take in any news article; none looks at a particular text, and no model is called.
"""

from __future__ import annotations

import re

MIN_WORDS = 5  # "Why?", "Health inequalities", "Learn more": too short to state anything

# A word: letters or digits, joined by apostrophes, hyphens, "&" or dots ("A&E", "don't").
_WORD = re.compile(r"[^\W_]+(?:['’&.\-][^\W_]+)*")
# Closing quotes and brackets may follow a sentence's last stop.
_CLOSERS = r"[\"”’'»)\]]*"
_TERMINAL = re.compile(rf"[.!?…]{_CLOSERS}$")
_QUESTION = re.compile(rf"\?{_CLOSERS}$")
# A list's number or letter with nothing after it: "2.", "(a)", "iv)".
_LIST_MARKER = re.compile(r"\(?(?:\d{1,3}|[a-zA-Z]|[ivxlc]{1,5})[.):]?\)?")
# "Photo: ...", "Image credit Getty", "(Picture: PA)", "Photograph by ...", "Main image – ...".
_CAPTION = re.compile(
    r"[(\[]?\s*(?:(?:main|top|lead|header|featured|cover)\s+)?"
    r"(?:photo(?:graph)?|picture|pic|pictured|image|caption|credit|illustration|graphic|video)s?"
    r"(?:\s*:|\s+[|/–—-]\s|\s+(?:credit|courtesy|by)\b)",
    re.IGNORECASE,
)
# Words that stay lower case inside a title-cased heading or a name ("Network of the Year").
_MINOR_WORDS = frozenset(
    "a an the and or nor but of in on at to for by with from as per via vs".split()
)
# A finite verb is what a credit line lacks: auxiliaries, "says", a negated verb, a past tense.
_VERB_WORD = re.compile(
    r"\b(?:am|is|are|was|were|be|been|being|has|have|had|do|does|did|will|would|shall|should|"
    r"can|could|may|might|must|says?|said|\w+n['’]t)\b",
    re.IGNORECASE,
)
_PAST_TENSE = re.compile(r"\b[a-z]{2,}ed\b")
_NAME = r"[A-Z][\w'’-]*"
# "By Jane Roe, health editor" opens a byline; "A briefing on the plan by think tank director
# Jane Roe." ends a credit line.
_BYLINE_START = re.compile(rf"By\s+{_NAME}\s+{_NAME}")
_CREDIT_END = re.compile(rf"\bby\s+[^.!?]*?{_NAME}\s+{_NAME}\W*$")


def words(sentence: str) -> list[str]:
    """The sentence's words, punctuation left out."""
    return _WORD.findall(sentence)


def is_list_marker(sentence: str) -> bool:
    """A list's number or letter standing alone ("2.", "(a)"): the item's text is elsewhere."""
    return _LIST_MARKER.fullmatch(sentence.strip()) is not None


def is_question(sentence: str) -> bool:
    """The writer asks rather than tells ("What is the best we can hope for?")."""
    return _QUESTION.search(sentence.rstrip()) is not None


def is_caption(sentence: str) -> bool:
    """A picture's caption or credit: it opens with "Photo", "Image", "Credit"... and then a
    colon, a dash, or "credit"/"by", which no sentence about the article's subject does."""
    return _CAPTION.match(sentence.lstrip()) is not None


def has_terminal_stop(sentence: str) -> bool:
    """Ends with . ! ? or an ellipsis (closing quotes allowed): the mark of prose, which
    headings, bylines and labels go without."""
    return _TERMINAL.search(sentence.rstrip()) is not None


def is_title_cased(sentence: str) -> bool:
    """Most of its words (leaving out "of", "the"...) are capitalised, as in a heading
    ("Prevention And Intervention") or a byline ("Adam Lent, director, New Local Government
    Network"); prose capitalises names only."""
    content = [w for w in words(sentence) if w[0].isalpha() and w.lower() not in _MINOR_WORDS]
    if not content:
        return False
    capitalised = sum(1 for w in content if w[0].isupper())
    return capitalised * 2 > len(content)


def has_verb_clue(sentence: str) -> bool:
    """A finite verb, as far as a pattern can tell: an auxiliary or modal, "says", a negated
    verb, or a lower-case past tense. Misses present-tense verbs ("reveals"), so it is only
    used where a missing verb is one clue among others."""
    return _VERB_WORD.search(sentence) is not None or _PAST_TENSE.search(sentence) is not None


def is_credit_line(sentence: str) -> bool:
    """A byline or standfirst credit: "By Jane Roe ..." at the start, or "... by <title> Jane
    Roe." at the end, with no verb: it says who wrote the article, not what it says."""
    credited = _BYLINE_START.match(sentence.lstrip()) or _CREDIT_END.search(sentence)
    return credited is not None and not has_verb_clue(sentence)


def why_not_an_answer(sentence: str, stands_alone: bool = False) -> str | None:
    """The kind of non-answer the sentence is ("question", "caption"...), or None when it can
    answer. `stands_alone`: the sentence is a whole line that the next line does not continue
    (`index/highlight.stands_alone`); without a full stop that is a heading, even one in
    sentence case with a verb ("NHS plan has a massive community shaped hole at its core"),
    which its text alone cannot tell from prose that lost its stop."""
    text = sentence.strip()
    if is_list_marker(text):
        return "list marker"
    if is_caption(text):
        return "caption"
    if is_credit_line(text):
        return "credit line"
    if is_question(text):
        return "question"
    if len(words(text)) < MIN_WORDS:
        return "too short"
    if not has_terminal_stop(text) and (stands_alone or is_title_cased(text)):
        return "heading or byline"
    return None


def can_be_answer(sentence: str, stands_alone: bool = False) -> bool:
    """Whether the sentence may be shown as an answer (see `why_not_an_answer`)."""
    return why_not_an_answer(sentence, stands_alone) is None
