"""The pure rules of `qa-testset` (qa_service/testset.py): which sentences a generated
question may be written for, the order passages are taken in, and the filters a generated
question must pass. No model and no index are touched here, so each rule is tested on its own.

Words are compared as the lexical index compares them (`index.lexical.analyse`: lower case,
English stopwords out, stemmed), so "hopes" in a question matches "hope" in a passage and
"what", "the", "does" never count as shared.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from index.highlight import sentence_spans, stands_alone
from index.lexical import analyse
from index.sentences import can_be_answer, words

T = TypeVar("T")

# A sentence a question is written for: long enough to state something, short enough to be
# one fact, with a few content words to ask about.
MIN_SPAN_WORDS = 6
MAX_SPAN_WORDS = 60
MIN_SPAN_TERMS = 3
# A passage with fewer words is a heading, a byline or a stray line, whatever its sentences.
MIN_PASSAGE_WORDS = 12

MIN_QUESTION_WORDS = 3
MAX_QUESTION_WORDS = 30
MAX_QUESTION_CHARS = 200
# Defaults of the copy filter (`copy_verdict`), set on the 114 answerable questions people
# wrote for the sample (shared/eval/readers and questions.jsonl): 9 in 10 share at most 80% of
# their content words with the passage that answers them, and all but 2 at most four words in
# a row. A generated question that overlaps more than that copies rather than asks.
OVERLAP_CAP = 0.8
OVERLAP_MIN_TERMS = 3
MAX_SHARED_RUN = 5
# Out-of-scope checks (`words_to_hold`, `may_answer`): a passage holding three quarters of a
# question's content words may answer it; so may a search at half the probability of an answer.
# On the sample's 24 out-of-scope reader questions the probability reached 0.5 for 3, and
# for half the answerable ones.
HOLD_SHARE = 0.75
MAX_PROBABILITY = 0.5
# Two questions whose content words overlap this much (Jaccard) ask the same thing.
DUPLICATE_SIMILARITY = 0.8

# How a question opens: a question word ("whats" as readers type it), after "for"/"in"... too.
_QUESTION_WORD = re.compile(
    r"(?:(?:for|in|on|at|by|from|to|since|and|so|but)\s+)?"
    r"(?:(?:what|who|why|how|when|where)(?:['’]?s)?|whom|whose|which|is|are|was|were|do|does|"
    r"did|can|could|should|will|would|has|have|had)\b",
    re.IGNORECASE,
)
# A reader asks about the news, not about "the passage" the model was shown.
_REFERS_TO_TEXT = re.compile(
    r"\b(?:the|this|that|above|given)\s+(?:passage|text|excerpt|sentence|paragraph|extract)\b",
    re.IGNORECASE,
)
# A stop or an exclamation mark inside the text, or at its end: a statement, or a remark and then
# a question ("What a great title! This review..."). "Dr. Roe" and "3.5" do not count.
_SENTENCE_END = re.compile(r"(?<!\b(?:Dr|Mr|Ms|St|No))(?<!\bMrs)(?<!\bProf)[.!](?:\s|$)")
# Where a remark before a question ends: a stop, "!" or a colon, then a space.
_REMARK_END = re.compile(r"(?<!\b(?:Dr|Mr|Ms|St|No))(?<!\bMrs)(?<!\bProf)[.!:]\s+")
_REPLY_PREFIX = re.compile(
    r"^\s*(?:\*\*)?(?:question|q)\s*(?:\d+)?\s*[:.)-]\s*(?:\*\*)?\s*", re.IGNORECASE
)
_QUOTES = "\"'“”‘’`*"


def content_terms(text: str) -> list[str]:
    """`text`'s content words as the lexical index sees them (stemmed, stopwords out)."""
    return analyse([text])[0]


def answer_spans(text: str) -> list[str]:
    """The sentences of a passage a question may be written for, in order: each can be shown
    as an answer (`index.sentences.can_be_answer`: no heading, byline, caption, list number or
    question of the writer's), has `MIN_SPAN_WORDS` to `MAX_SPAN_WORDS` words and at least
    `MIN_SPAN_TERMS` content words. None from a passage under `MIN_PASSAGE_WORDS` words.
    Each is an exact substring of the passage, and so of its article."""
    if len(words(text)) < MIN_PASSAGE_WORDS:
        return []
    spans = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        if not can_be_answer(sentence, stands_alone(text, start, end)):
            continue
        sized = MIN_SPAN_WORDS <= len(words(sentence)) <= MAX_SPAN_WORDS
        if sized and len(set(content_terms(sentence))) >= MIN_SPAN_TERMS:
            spans.append(sentence)
    return spans


def spread(
    items: Sequence[T], keys: Sequence[Callable[[T], Hashable]], rng: random.Random
) -> list[T]:
    """`items` in an order that takes turns at every level of `keys` (say article, then
    section, then speaker): one item of each article before a second of any, within an article
    one of each section before a second, and so on. Groups and the items of the last level are
    shuffled by `rng`, so the order is the same for the same seed and items."""
    if not keys:
        shuffled = list(items)
        rng.shuffle(shuffled)
        return shuffled
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(keys[0](item), []).append(item)
    names = sorted(groups, key=lambda name: (name is None, str(name)))
    rng.shuffle(names)
    return interleave([spread(groups[name], keys[1:], rng) for name in names])


def interleave(lists: Iterable[Sequence[T]]) -> list[T]:
    """The first item of each list, then the second of each, and so on."""
    lists = [list(items) for items in lists]
    longest = max((len(items) for items in lists), default=0)
    return [items[i] for i in range(longest) for items in lists if i < len(items)]


def reply_question(reply: str) -> str:
    """The question in a model's reply: its first non-empty line, without a "Question:"
    label or wrapping quotes, cut after its first question mark, and without a remark before
    it ("What a great question. How about this: Who ...?" gives "Who ...?"). A reply with no
    question mark is returned whole, for `why_malformed` to judge."""
    lines = [line for line in reply.splitlines() if line.strip()]
    if not lines:
        return ""
    text = _REPLY_PREFIX.sub("", lines[0]).strip()
    if "?" in text:
        text = text[: text.index("?") + 1]
        breaks = list(_REMARK_END.finditer(text))
        text = text[breaks[-1].end():] if breaks else text
    return " ".join(text.strip(_QUOTES + " ").split())


def why_malformed(question: str) -> str | None:
    """Why `question` is not one a reader would type, or None when it is well formed: empty,
    too short or too long, not a question (no question mark and no question word first), more
    than one sentence, garbage (mostly not letters, or one word over and over), about "the
    passage", or without a content word to search for."""
    text = question.strip()
    found = words(text)
    if not found:
        return "empty"
    if len(found) < MIN_QUESTION_WORDS:
        return "too short"
    if len(found) > MAX_QUESTION_WORDS or len(text) > MAX_QUESTION_CHARS:
        return "too long"
    if not text.endswith("?") and not _QUESTION_WORD.match(text):
        return "not a question"
    if _SENTENCE_END.search(text.rstrip("?")):
        return "more than one sentence"
    if len(re.findall(r"\?+", text)) > 1:
        return "more than one question"
    letters = sum(ch.isalpha() for ch in text)
    repeats = max(found.count(word) for word in found)
    if letters < 0.6 * len(text) or repeats > max(3, len(found) // 3):
        return "garbage"
    if _REFERS_TO_TEXT.search(text):
        return "refers to the passage"
    if not content_terms(text):
        return "no content words"
    return None


def shared_run(question: str, passage: str) -> int:
    """The longest run of consecutive words (lower case, stopwords kept) found in both."""
    left = [w.lower() for w in words(question)]
    right = [w.lower() for w in words(passage)]
    best = 0
    previous = [0] * (len(right) + 1)
    for a in left:
        current = [0] * (len(right) + 1)
        for j, b in enumerate(right, start=1):
            if a == b:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def copy_verdict(
    question: str, passage: str, cap: float = OVERLAP_CAP, max_run: int = MAX_SHARED_RUN
) -> str | None:
    """Why `question` copies `passage`, or None when it does not. It copies when more than
    `cap` of its distinct content words are in the passage (counted only from
    `OVERLAP_MIN_TERMS` content words: a question of one or two names is a search, not a
    copy), or when `max_run` or more words in a row are the passage's."""
    terms = set(content_terms(question))
    if len(terms) >= OVERLAP_MIN_TERMS:
        share = len(terms & set(content_terms(passage))) / len(terms)
        if share > cap:
            return f"{share:.0%} of its content words are in the passage"
    run = shared_run(question, passage)
    if run >= max_run:
        return f"{run} words in a row are the passage's"
    return None


def question_key(question: str) -> frozenset[str]:
    """What a question asks, for de-duplication: its content words."""
    return frozenset(content_terms(question))


def is_duplicate(key: frozenset[str], kept: Iterable[frozenset[str]],
                 similarity: float = DUPLICATE_SIMILARITY) -> bool:
    """Whether a question with content words `key` asks what one already kept asks: the
    Jaccard similarity of their content words reaches `similarity`."""
    for other in kept:
        union = key | other
        if not union or len(key & other) / len(union) >= similarity:
            return True
    return False


def words_to_hold(terms: int) -> int:
    """How many of an out-of-scope question's `terms` content words a passage must hold to
    be taken for one that may answer it: `HOLD_SHARE` of them, rounded up (all of two or
    three, three of four, four of five)."""
    return math.ceil(HOLD_SHARE * terms - 1e-9)


def may_answer(confident: bool, probability: float | None, bar: float = MAX_PROBABILITY) -> bool:
    """Whether a search's result may answer a question meant to be out of scope: it gave a
    short answer (`confident`), or its calibrated probability that the first passage answers
    reaches `bar`, well below the bar of a short answer (the archive may answer it, and a
    test set must not say it does not)."""
    return confident or (probability is not None and probability >= bar)


def out_of_scope_verdict(known_terms: int, answered: bool, holders: int) -> str | None:
    """Why a generated out-of-scope question is not kept, or None to keep it.

    `known_terms`: how many of its content words some passage of the archive holds; none is
    a question off the archive's topics ("off topic"), not a near-domain one. `answered`: the
    search may answer it (`may_answer`). `holders`: passages holding `words_to_hold` of its
    content words (in their text or their speaker's name); such a passage may answer it, so
    the rule drops it even when it does not: a kept question must be safely unanswerable."""
    if known_terms == 0:
        return "off topic"
    if answered:
        return "answered confidently"
    if holders:
        return "a passage holds its words"
    return None
