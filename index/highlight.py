"""Pick the sentence of a passage that best matches the question (lexical, so it costs no model call)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from index.lexical import analyse
from index.records import Highlight
from index.sentences import can_be_answer

# A full stop after a title ("Dr. Jane Roe") ends no sentence. Each lookbehind is of one width.
NOT_AFTER_TITLE = r"(?<!\b(?:Dr|Mr|Ms|St)\.)(?<!\bMrs\.)(?<!\bProf\.)"
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space, or at a line break.
_BOUNDARY = re.compile(rf"(?<=[.!?]){NOT_AFTER_TITLE}[\"”’)\]]*\s+|\n\s*")
# What a sentence starts after: spaces, and a list item's bullet ("• ", "- ") or number ("2. ",
# "3) ", "(a) "). The boundary above cuts "2. If we..." after "2.", which this then drops whole,
# so a list's number is never a sentence of its own nor the opening of its item's sentence.
_LEADING = re.compile(
    r"\s*(?:(?:[-*•·\u2013\u2014]|\d{1,3}[.)]|\(\d{1,3}\)|\(?[a-z]\)|\([ivx]{1,4}\))(?:\s+|$))?"
)
# The rest of a line after a sentence, and the start of the next line's text.
_LINE_REST = re.compile(r"[^\S\n]*(?:\n\s*(\S)|\s*\Z)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence, trimmed of surrounding whitespace and of a
    list item's bullet or number."""
    spans = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        spans.append((start, match.start() + len(match.group(0).rstrip())))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for begin, end in spans:
        piece = text[begin:end]
        lead = _LEADING.match(piece).end()
        body = piece[lead:].rstrip()
        if body:
            trimmed.append((begin + lead, begin + lead + len(body)))
    return trimmed


def stands_alone(text: str, start: int, end: int) -> bool:
    """Whether `text[start:end]` is a whole line (bar a bullet or number) that the next line
    does not carry on: the shape of a heading or a byline. A line that ends mid-sentence in
    hard-wrapped text is followed by a lower-case word, so it does not stand alone."""
    line_start = text.rfind("\n", 0, start) + 1
    if _LEADING.fullmatch(text[line_start:start]) is None:
        return False
    rest = _LINE_REST.match(text, end)
    if rest is None:
        return False
    following = rest.group(1)
    return following is None or not following.islower()


def _scored(
    text: str, term_weights: Mapping[str, float]
) -> list[tuple[tuple[int, int], str, float, float]]:
    """(span, sentence, matched, score) for each sentence of `text`, in order. `matched`: the
    weights of the question's terms it holds, each counted once (BM25's idf: a rare word like
    "defence" says more than "health"). `score`: `matched` over the square root of the
    sentence's length in terms, so a short sentence dense in them wins."""
    spans = sentence_spans(text) or [(0, len(text))]
    sentences = [text[start:end] for start, end in spans]
    # One analyse call for all sentences: its per-call cost is most of a sentence's.
    analysed = analyse(sentences) if term_weights else [[] for _ in sentences]
    out = []
    for span, sentence, terms in zip(spans, sentences, analysed):
        matched = sum(term_weights[term] for term in set(terms) if term in term_weights)
        out.append((span, sentence, matched, matched / (len(terms) ** 0.5) if terms else 0.0))
    return out


def _eligible(text: str, span: tuple[int, int], sentence: str) -> bool:
    """Whether the sentence can be shown as an answer (`index/sentences.can_be_answer`)."""
    return can_be_answer(sentence, stands_alone(text, *span))


def best_sentence(
    text: str, term_weights: Mapping[str, float], can_answer: Callable[[str], bool] | None = None
) -> Highlight:
    """The sentence to highlight: the one with the best score (`_scored`), the first on ties.
    One that can be shown as an answer comes before any that cannot (a heading, a byline, "2."),
    which is chosen only when the passage has nothing else. With `can_answer` (the question's
    answer type, `index/answer_type.py`), next comes a sentence that shares a term with the
    question and can answer it. Sentences are tried best first, so the shape rules run on one
    or two of them, not on all."""
    scored = _scored(text, term_weights)
    typed = [matched > 0 and can_answer is not None and can_answer(sentence) for _, sentence, matched, _ in scored]
    order = sorted(range(len(scored)), key=lambda i: (not typed[i], -scored[i][3], i))
    for i in order:
        span, sentence = scored[i][0], scored[i][1]
        if _eligible(text, span, sentence):
            return Highlight(*span)
    return Highlight(*scored[order[0]][0])


def answers(
    text: str,
    highlight: Highlight,
    term_weights: Mapping[str, float],
    can_answer: Callable[[str], bool] | None = None,
) -> bool:
    """Whether the highlighted sentence (`best_sentence` of `text` for the same question) can be
    a short answer: it can be shown as an answer, shares at least one of the question's terms
    and, given `can_answer`, passes it. `best_sentence` puts such a sentence first whenever the
    passage has one, so when its choice fails this, no sentence of the passage passes."""
    sentence = text[highlight.start : highlight.end]
    matched = sum(term_weights[term] for term in set(analyse([sentence])[0]) if term in term_weights)
    if matched <= 0 or (can_answer is not None and not can_answer(sentence)):
        return False
    return _eligible(text, (highlight.start, highlight.end), sentence)


def answer_sentence(
    text: str, term_weights: Mapping[str, float], can_answer: Callable[[str], bool] | None = None
) -> Highlight | None:
    """The sentence of `text` that can be a short answer (`answers`), or None when no sentence
    can: better no short answer than a heading or an unrelated sentence of a related passage."""
    highlight = best_sentence(text, term_weights, can_answer)
    return highlight if answers(text, highlight, term_weights, can_answer) else None
