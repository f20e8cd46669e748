"""Pick the sentence of a passage that best matches the question (lexical, so it costs no model call)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from index.lexical import analyse
from index.records import Highlight

# A full stop after a title ("Dr. Jane Roe") ends no sentence. Each lookbehind is of one width.
NOT_AFTER_TITLE = r"(?<!\b(?:Dr|Mr|Ms|St)\.)(?<!\bMrs\.)(?<!\bProf\.)"
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by space, or at a line break.
_BOUNDARY = re.compile(rf"(?<=[.!?]){NOT_AFTER_TITLE}[\"”’)\]]*\s+|\n\s*")
# What a sentence starts after: spaces, and a list item's bullet ("• ", "- ").
_LEADING = re.compile(r"\s*(?:[-*•·\u2013\u2014](?:\s+|$))?")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence, trimmed of surrounding whitespace and of a
    list item's bullet."""
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


def best_sentence(
    text: str, term_weights: Mapping[str, float], can_answer: Callable[[str], bool] | None = None
) -> Highlight:
    """The sentence with the densest overlap with the question's analysed terms, each counted
    by its weight (BM25's idf: a rare word like "defence" says more than "health"), over the
    square root of the sentence's length in terms. The first one wins ties. With `can_answer`
    (the question's answer type, `index/answer_type.py`), a sentence that shares a term with
    the question and can answer it comes before one that cannot."""
    spans = sentence_spans(text) or [(0, len(text))]
    if not term_weights:
        return Highlight(*spans[0])
    sentences = [text[start:end] for start, end in spans]
    best, best_key = spans[0], (False, -1.0)
    # One analyse call for all sentences: its per-call cost is most of a sentence's.
    for span, sentence, terms in zip(spans, sentences, analyse(sentences)):
        matched = sum(term_weights[term] for term in set(terms) if term in term_weights)
        score = matched / (len(terms) ** 0.5) if terms else 0.0
        key = (matched > 0 and can_answer is not None and can_answer(sentence), score)
        if key > best_key:
            best, best_key = span, key
    return Highlight(*best)
