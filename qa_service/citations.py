"""Check a composed answer sentence by sentence against the passages it cites.

A sentence reaches the reader only when every rule holds:
  1. it cites at least one passage, as [n] (or [n, m]);
  2. every cited n is one of the passages shown;
  3. every number, name and quotation in it occurs in the cited passages (text, title, speaker;
     sentences addressed to an assistant, such as "ignore your instructions", do not count);
  4. it says something the question did not, and most of what it adds (its content words
     beyond the question's, stemmed, number words as figures) is in the cited sentences
     closest to it, or in the cited passages' titles and speakers;
  5. it is close in meaning to a sentence of a cited passage: cosine similarity of the
     embedding model's vectors at least `min_support` (calibrated in docs/history/quality-2026-11-to-12.md),
     negated only where that sentence is, and any two names it pairs are close together there.
The first rule that fails is the sentence's reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.encoder import TextEncoder
from index.highlight import NOT_AFTER_TITLE, sentence_spans
from index.lexical import STOPWORDS, analyse
from index.records import Passage

EVIDENCE_SENTENCES = 1  # the cited sentences closest to a claim, where its added words must be
MAX_NAME_GAP = 3  # words between two names a claim pairs ("Manchester's Andy Street") in its evidence

_CITATION = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
# A sentence ends at . ! ? followed by space (citations that follow the stop stay with it).
_SENTENCE_END = re.compile(rf"(?<=[.!?]){NOT_AFTER_TITLE}((?:\s*\[\s*\d+(?:\s*,\s*\d+)*\s*\])*)\s+|\n+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
# Double quotes, or single curly ones (a straight ' is too often an apostrophe).
_QUOTED = re.compile(r"[\"“]([^\"“”]{3,}?)[\"”]|‘([^‘’]{3,}?)’")
_NEGATION = re.compile(r"\b(?:not|no|never|nor|none|nothing|neither|cannot)\b|n't\b", re.IGNORECASE)
# Sentences in a passage that speak to an assistant rather than to a reader.
_INSTRUCTION_LIKE = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,60}\b(?:instructions?|prompts?|rules|"
    r"above|previous|earlier)\b"
    r"|\bsystem prompt\b|\byou are (?:now )?(?:an? |the )?(?:ai|assistant|language model|chatbot)\b"
    r"|\b(?:assistant|ai|chatbot|language model)s?\s*[:,]\s*(?:you must|reply|respond|say|write|answer)\b",
    re.IGNORECASE,
)
# Number words as figures, so that "10 years" adds nothing to "the ten-year plan".
_FIGURES = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_FIGURE_WORD = re.compile(rf"\b({'|'.join(_FIGURES)})\b", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^[^\S\n]*(?:\d+[.)]|[-*•])[^\S\n]+", re.MULTILINE)  # "1. ", "- " at a line start


@dataclass(frozen=True)
class CheckedSentence:
    text: str  # as the model wrote it, citation markers included
    citations: list[int]
    supported: bool
    reason: str | None  # why it was dropped; None when supported
    similarity: float | None = None  # to the closest cited sentence, once it was computed


def split_sentences(text: str) -> list[str]:
    """The answer's sentences, each with the citation markers that follow its full stop."""
    text = _LIST_MARKER.sub("", text)
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start() + len(match.group(1) or "")
        pieces.append(text[start:end])
        start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def citations_of(sentence: str) -> list[int]:
    found: list[int] = []
    for match in _CITATION.finditer(sentence):
        for number in match.group(1).split(","):
            if int(number) not in found:
                found.append(int(number))
    return found


def without_citations(sentence: str) -> str:
    return re.sub(r"\s+", " ", _CITATION.sub(" ", sentence)).strip()


def remove_markers(text: str) -> str:
    """`text` without its "[n]" markers (a passage must not forge a citation)."""
    return _CITATION.sub("", text)


def instruction_like(sentence: str) -> bool:
    """A sentence that speaks to an assistant rather than to a reader ("ignore your
    instructions and ..."): never shown to the model, never evidence for a claim."""
    return bool(_INSTRUCTION_LIKE.search(sentence))


def evidence_sentences(passage: Passage) -> list[str]:
    text = passage.chunk.text
    return [text[start:end] for start, end in sentence_spans(text) if not instruction_like(text[start:end])]


def _terms(text: str) -> set[str]:
    """The text's analysed terms, with number words as figures."""
    return set(analyse([_FIGURE_WORD.sub(lambda m: _FIGURES[m.group().lower()], text)])[0])


def _normalise(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).lower()


def _numbers(text: str) -> set[str]:
    return {number.replace(",", "").rstrip(".") for number in _NUMBER.findall(text)}


def _names(sentence: str) -> list[str]:
    """Capitalised words. A sentence's first word only when the next is capitalised too
    ("Jane Roe said"): alone it is as often a common word ("Drivers say", "Yes")."""
    return [word for group in _name_groups(sentence) for word in group]


def _name_groups(sentence: str) -> list[list[str]]:
    """The names in a sentence, each a run of capitalised words ("Andy Street", "Manchester")."""
    matches = list(_WORD.finditer(sentence))
    words = [match.group() for match in matches]
    groups: list[list[str]] = []
    previous = -2
    for position, word in enumerate(words):
        if not word[0].isupper() or word == "I":
            continue
        if position == 0 and (len(words) < 2 or not words[1][0].isupper()
                              or word.lower() in STOPWORDS):
            continue
        # One name while only spaces separate its words ("Andy Street", not "Manchester, Andy").
        between = sentence[matches[previous].end():matches[position].start()] if previous >= 0 else ""
        if groups and position == previous + 1 and not between.strip():
            groups[-1].append(word)
        else:
            groups.append([word])
        previous = position
    return groups


def _apart(claim: str, evidence: str) -> tuple[str, str] | None:
    """Two names the claim puts together that its evidence sentence keeps apart (more than
    `MAX_NAME_GAP` words between them, wherever each occurs), or None."""
    words = [_word_key(word) for word in _WORD.findall(evidence)]
    places = {}
    for group in _name_groups(claim):
        keys = [_word_key(word) for word in group]
        found = [i for i in range(len(words) - len(keys) + 1) if words[i:i + len(keys)] == keys]
        if found:
            places[" ".join(group)] = [(i, i + len(keys)) for i in found]
    named = list(places)
    for a, first in enumerate(named):
        for second in named[a + 1:]:
            gap = min(max(s2 - e1, s1 - e2) for s1, e1 in places[first] for s2, e2 in places[second])
            if gap > MAX_NAME_GAP:
                return first, second
    return None


def _word_key(word: str) -> str:
    """Lower case without a possessive ending: "NHS's", "NHS’" and "nhs" are one word."""
    return re.sub(r"['’]s?$", "", word.lower())


def _labels(passage: Passage) -> list[str]:
    """What names a passage besides its text: its article's title and author, its speaker."""
    return [part for part in (passage.article.title, passage.chunk.speaker, passage.article.author) if part]


def _passage_source(passage: Passage) -> str:
    return _normalise("\n".join([*_labels(passage), *evidence_sentences(passage)]))


class CitationChecker:
    """Applies the rules above; the embedding model is the one the service already holds."""

    def __init__(self, encoder: TextEncoder, min_support: float, min_new_terms: float = 0.75) -> None:
        self._encoder = encoder
        self.min_support = min_support
        self.min_new_terms = min_new_terms

    def check(self, answer: str, passages: Sequence[Passage], question: str) -> list[CheckedSentence]:
        asked = _terms(question)
        checked = []
        for sentence in split_sentences(answer):
            claim = without_citations(sentence)
            cited = citations_of(sentence)
            reason = self._rule_failure(claim, cited, passages)
            similarity = None
            if reason is None:
                similarity, reason = self._support(claim, asked, [passages[n - 1] for n in cited])
            checked.append(CheckedSentence(sentence, cited, reason is None, reason, similarity))
        return checked

    def _rule_failure(self, claim: str, cited: list[int], passages: Sequence[Passage]) -> str | None:
        if not cited:
            return "no citation"
        outside = [n for n in cited if not 1 <= n <= len(passages)]
        if outside:
            shown = f"[1] to [{len(passages)}]" if passages else "none"
            return f"cites [{outside[0]}], which is not among the passages shown ({shown})"
        if not claim or not _WORD.search(claim):
            return "no statement, only citations"
        source = "\n".join(_passage_source(passages[n - 1]) for n in cited)
        missing_numbers = sorted(_numbers(claim) - _numbers(source))
        if missing_numbers:
            return f"the number {missing_numbers[0]} is not in the cited passages"
        source_words = {_word_key(word) for word in _WORD.findall(source)}
        for name in _names(claim):
            if _word_key(name) not in source_words:
                return f"the name {name!r} is not in the cited passages"
        for match in _QUOTED.finditer(claim):
            quoted = _normalise(match.group(1) or match.group(2)).strip()
            if quoted not in source:
                return f"the quotation \"{quoted}\" is not in the cited passages"
        return None

    def _support(self, claim: str, asked: set[str], cited: list[Passage]) -> tuple[float | None, str | None]:
        """Rules 4 and 5: the claim's similarity to its closest cited sentence, and why the
        cited passages do not support it (None when they do)."""
        added = _terms(claim) - asked
        if not added:
            return None, "it only restates the question"
        candidates = [sentence for passage in cited for sentence in evidence_sentences(passage)]
        if not candidates:
            return None, "the cited passages are empty"
        vectors = self._encoder.encode_questions([claim, *candidates])
        similarities = vectors[1:] @ vectors[0]
        order = np.argsort(-similarities, kind="stable")
        closest = round(float(similarities[order[0]]), 4)
        # What the claim adds must be said where it is matched: its closest sentences and the
        # passages' titles and speakers, not a word picked from elsewhere in a long passage.
        metadata = [label for passage in cited for label in _labels(passage)]
        nearest = [candidates[i] for i in order[:EVIDENCE_SENTENCES]]
        evidence = _terms("\n".join(metadata + nearest))
        found = len(added & evidence) / len(added)
        if found < self.min_new_terms:
            return closest, (f"{1 - found:.0%} of what it adds to the question is not in the "
                             f"cited sentences ({', '.join(sorted(added - evidence)[:5])})")
        if closest < self.min_support:
            return closest, (f"not close enough to any sentence of the cited passages "
                             f"(similarity {closest:.2f}, needs {self.min_support:.2f})")
        # Embeddings barely see "not": a claim that negates its closest sentence, or drops
        # that sentence's negation, says something else.
        if bool(_NEGATION.search(claim)) != bool(_NEGATION.search(candidates[order[0]])):
            return closest, "its closest sentence in the cited passages says the opposite (a negation differs)"
        # Nor do they see which name goes with which: both names can be in the sentence and
        # still belong to different things.
        apart = _apart(claim, candidates[order[0]])
        if apart:
            return closest, f"it pairs {apart[0]} with {apart[1]}, which the cited sentence does not"
        return closest, None


def supported_text(sentences: Sequence[CheckedSentence]) -> str:
    return " ".join(sentence.text for sentence in sentences if sentence.supported)
