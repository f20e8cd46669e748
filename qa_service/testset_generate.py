"""Writing and checking the questions of `qa-testset` (qa_service/testset.py, where the method
is described): the order passages are taken in, the model's question for each, the filters
that run on the index (the round trip, the out-of-scope checks) and the funnel of counts.
The filters that need no index are in qa_service/testset_rules.py.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from index.errors import QAError
from index.evaluate import EvalQuestion, hit_rank, is_confident
from index.lexical import LexicalQuery
from index.records import Chunk, SearchResult
from index.search import Searcher
from index.version import IndexVersion
from qa_service.llm import ChatModel, GenerationError
from qa_service.testset_rules import (
    OVERLAP_CAP,
    answer_spans,
    content_terms,
    copy_verdict,
    is_duplicate,
    may_answer,
    out_of_scope_verdict,
    question_key,
    reply_question,
    spread,
    why_malformed,
    words_to_hold,
)

_ASK = "that a reader would type into a news archive's search box and that the passage answers"
# The ways a question is asked for: the first for every sentence, then the next for every
# sentence, and so on, so a small archive still has enough to ask about (the model's replies
# are deterministic: one sentence asked the same way gives the same question).
QUESTION_PROMPTS = (
    f"Write the question {_ASK}. One short question, in your own words. "
    "Reply with the question only.",
    f"Write a question starting with Why or How {_ASK}. Reply with the question only.",
    f"Write a question starting with Who or What {_ASK}. Reply with the question only.",
    f"Write a yes-or-no question {_ASK}. Reply with the question only.",
)
OUT_OF_SCOPE_PROMPT = (
    "Write a question a reader of a news archive might ask on the passage's topic that the "
    "passage does not answer: ask for a fact it does not give. Reply with the question only."
)
# Written here, about nothing in any archive; a prompt and its example are the same for every
# call, so the server keeps them cached.
_EXAMPLE = "The council voted on Tuesday to close the Elm Street library in March to save money."
QUESTION_EXAMPLES = (
    (_EXAMPLE, "When will the library on Elm Street shut?"),
    (_EXAMPLE, "Why is the Elm Street library closing?"),
    (_EXAMPLE, "Who decided to close the Elm Street library?"),
    (_EXAMPLE, "Is the Elm Street library closing?"),
)
OUT_OF_SCOPE_EXAMPLE = (
    _EXAMPLE, "How many people borrowed books from the Elm Street library last year?",
)
MAX_TOKENS = 48
MAX_FAILURES_IN_A_ROW = 3
ATTEMPTS_PER_QUESTION = 4
PROGRESS_EVERY = 10
ANSWERABLE_FILTERS = ("model_failed", "malformed", "copies_passage", "duplicate", "round_trip")
OUT_OF_SCOPE_FILTERS = (
    "model_failed", "malformed", "duplicate", "off_topic", "answered_confidently",
    "passage_holds_words",
)
_OUT_OF_SCOPE_REASONS = {
    "off topic": "off_topic", "answered confidently": "answered_confidently",
    "a passage holds its words": "passage_holds_words",
}
Verdict = tuple[str, str] | None  # (filter, why) when dropped


@dataclass(frozen=True)
class Options:
    n: int
    out_of_scope: int
    seed: int = 0
    attempts: int | None = None  # per kind; None: ATTEMPTS_PER_QUESTION a question wanted
    k: int = 3
    overlap_cap: float = OVERLAP_CAP
    verbose: bool = False


@dataclass(frozen=True)
class Source:
    """A sentence of a passage (an exact substring of it) that a question is written for."""

    chunk: Chunk
    span: str
    style: int = 0  # which of its kind's prompts asks for the question


@dataclass
class Funnel:
    """Questions asked of the model, where each went (`dropped` by filter, or kept), and why
    asking stopped. The drops and `kept` add up to `asked`."""

    kind: str
    filters: tuple[str, ...]
    wanted: int
    budget: int
    asked: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    ending: str = ""

    def figures(self) -> dict:
        return {"wanted": self.wanted, "asked": self.asked, "kept": self.kept,
                "dropped": {name: self.dropped[name] for name in self.filters},
                "ending": self.ending}

    def summary(self) -> str:
        drops = ", ".join(f"{name} {self.dropped[name]}" for name in self.filters)
        return (f"{self.kind}: {self.kept} kept of {self.wanted} wanted, {self.asked} asked "
                f"({drops}); {self.ending}")


@dataclass
class Generator:
    """What writing and checking questions needs, and the time each part took."""

    model: ChatModel
    searcher: Searcher
    options: Options
    log: Callable[[str], None]
    kept_keys: list[frozenset[str]] = field(default_factory=list)
    failures_in_a_row: int = 0
    model_s: float = 0.0
    search_s: float = 0.0

    def write(self, prompt: str, example: tuple[str, str], span: str) -> str | None:
        """The model's question for `span` as `prompt` and its `example` (a passage and its
        question) ask, or None when the call failed. Only the first line is read: the stream
        is closed there, so a rambling reply costs no more time."""
        messages = [
            {"role": "system", "content": prompt},
            {"role": "user", "content": f"Passage: {example[0]}\nQuestion:"},
            {"role": "assistant", "content": example[1]},
            {"role": "user", "content": f"Passage: {span}\nQuestion:"},
        ]
        started, reply = time.perf_counter(), ""
        try:
            with contextlib.closing(self.model.stream(messages, max_tokens=MAX_TOKENS)) as pieces:
                for piece in pieces:
                    reply += piece
                    if "?" in reply or "\n" in reply.strip():
                        break
        except GenerationError as exc:
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                raise QAError(
                    f"the language model failed {MAX_FAILURES_IN_A_ROW} times in a row: {exc}"
                ) from exc
            self.log(f"the language model failed ({exc}); going on")
            return None
        finally:
            self.model_s += time.perf_counter() - started
        self.failures_in_a_row = 0
        return reply_question(reply)

    def search(self, question: str, top_k: int | None = None) -> SearchResult:
        started = time.perf_counter()
        try:
            return self.searcher.search(question, top_k=top_k)
        finally:
            self.search_s += time.perf_counter() - started


def passage_order(index: IndexVersion, seed: int) -> list[int]:
    """The live chunk rows in the order passages are taken: in turns over articles, then
    sections, then speakers (`testset_rules.spread`), the same for the same seed."""
    chunks = index.chunks
    speakers = chunks.map_speakers(lambda name: name)
    refs = [(int(row), chunks.article_ids[row], chunks.sections[row], speakers[row])
            for row in np.flatnonzero(chunks.live)]
    keys = [lambda ref: ref[1], lambda ref: ref[2], lambda ref: ref[3]]
    return [ref[0] for ref in spread(refs, keys, random.Random(seed))]


def sources(index: IndexVersion, order: list[int], seed: int, styles: int = 1) -> Iterator[Source]:
    """One sentence of each passage in `order`, then a second of each, and so on until every
    sentence that can be an answer has been given (each passage's in a seeded order); then all
    of that again in the next of `styles` ways of asking."""
    rng = random.Random(seed)
    spans: dict[int, list[str]] = {}
    for style in range(styles):
        for round_ in itertools.count():
            given = False
            for row in order:
                if row not in spans:
                    spans[row] = answer_spans(index.chunks[row].text)
                    rng.shuffle(spans[row])
                if round_ < len(spans[row]):
                    given = True
                    yield Source(index.chunks[row], spans[row][round_], style)
            if not given:
                break


def answerable_row(source: Source, question: str) -> dict:
    row = {"question": question, "article": source.chunk.article_id,
           "must_contain_any": [source.span]}
    if source.chunk.speaker:
        row["speaker"] = source.chunk.speaker
    return row | {"generated": True}


def out_of_scope_row(source: Source, question: str) -> dict:
    return {"question": question, "article": None, "must_contain_any": [], "out_of_scope": True,
            "generated": True}


def judge_answerable(gen: Generator, source: Source, question: str) -> Verdict:
    """The first filter (of ANSWERABLE_FILTERS) `question` fails, and why; None: keep it."""
    if why := why_malformed(question):
        return "malformed", why
    if why := copy_verdict(question, source.chunk.text, gen.options.overlap_cap):
        return "copies_passage", why
    if is_duplicate(question_key(question), gen.kept_keys):
        return "duplicate", "asks what a kept question asks"
    expected = EvalQuestion(question, source.chunk.article_id, (source.span,), source.chunk.speaker,
                            out_of_scope=False)
    rank = hit_rank(expected, gen.search(question, top_k=gen.options.k))
    if rank is None:
        return "round_trip", f"its passage is not in the first {gen.options.k}"
    return None


def holding_rows(index: IndexVersion, term: str) -> np.ndarray:
    """One boolean per chunk row: whether the live passage holds the analysed `term` in its
    text or in its speaker's name (a question may name who said it)."""
    in_text = index.lexical.scores(LexicalQuery((term,), np.ones(1, dtype=np.float32))) > 0
    in_name = index.chunks.map_speakers(lambda name: bool(name) and term in content_terms(name))
    return in_text | (in_name.astype(bool) & index.chunks.live)


def judge_out_of_scope(gen: Generator, source: Source, question: str) -> Verdict:
    """The first filter (of OUT_OF_SCOPE_FILTERS) `question` fails, and why; None: keep it."""
    if why := why_malformed(question):
        return "malformed", why
    if is_duplicate(question_key(question), gen.kept_keys):
        return "duplicate", "asks what a kept question asks"
    index = gen.searcher.index
    terms = sorted(set(content_terms(question)))
    masks = np.array([holding_rows(index, term) for term in terms])
    known = int(masks.any(axis=1).sum())
    holders = int((masks.sum(axis=0) >= words_to_hold(len(terms))).sum())
    answered = False
    if known:
        result = gen.search(question)
        answered = may_answer(is_confident(result), result.probability)
    why = out_of_scope_verdict(known, answered, holders)
    return None if why is None else (_OUT_OF_SCOPE_REASONS[why], why)


@dataclass(frozen=True)
class Kind:
    """One kind of question: how it is asked for, checked and written out."""

    name: str
    filters: tuple[str, ...]
    prompts: tuple[str, ...]
    examples: tuple[tuple[str, str], ...]  # (passage, question) for each prompt
    judge: Callable[[Generator, Source, str], Verdict]
    row: Callable[[Source, str], dict]


ANSWERABLE = Kind("answerable", ANSWERABLE_FILTERS, QUESTION_PROMPTS, QUESTION_EXAMPLES,
                  judge_answerable, answerable_row)
OUT_OF_SCOPE = Kind("out of scope", OUT_OF_SCOPE_FILTERS, (OUT_OF_SCOPE_PROMPT,),
                    (OUT_OF_SCOPE_EXAMPLE,), judge_out_of_scope, out_of_scope_row)


def collect(
    gen: Generator, kind: Kind, given: Iterator[Source], wanted: int
) -> tuple[list[dict], Funnel]:
    """Questions of `kind` written for `given` sources until `wanted` are kept, the budget of
    attempts is spent or the sources run out; the rows kept and the funnel."""
    budget = gen.options.attempts or ATTEMPTS_PER_QUESTION * wanted
    funnel = Funnel(kind.name, kind.filters, wanted, budget)
    rows: list[dict] = []
    started = time.perf_counter()
    for source in given:
        if funnel.kept >= wanted or funnel.asked >= budget:
            break
        funnel.asked += 1
        question = gen.write(kind.prompts[source.style], kind.examples[source.style], source.span)
        if question is None:
            verdict: Verdict = ("model_failed", "no reply")
        else:
            verdict = kind.judge(gen, source, question)
        if verdict is None:
            rows.append(kind.row(source, question))
            gen.kept_keys.append(question_key(question))
            funnel.kept += 1
        else:
            funnel.dropped[verdict[0]] += 1
        if gen.options.verbose:
            fate = "kept" if verdict is None else "dropped, " + ": ".join(verdict)
            gen.log(f"{kind.name}: {fate}: {question!r}")
        if funnel.asked % PROGRESS_EVERY == 0:
            each = (time.perf_counter() - started) / funnel.asked
            gen.log(f"{kind.name}: {funnel.asked} asked, {funnel.kept} of {wanted} kept, "
                    f"{each:.1f} s a question")
    funnel.ending = _ending(funnel)
    return rows, funnel


def _ending(funnel: Funnel) -> str:
    if funnel.kept >= funnel.wanted:
        return "all wanted were kept"
    if funnel.asked >= funnel.budget:
        return f"stopped: the budget of {funnel.budget} attempts was spent"
    return ("stopped: every sentence of the archive that can be an answer was asked about, "
            "in every way")
