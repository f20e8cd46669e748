"""qa-testset: the pure rules table by table, the sampling on the sample index, the filters that
search with a scripted model, and one run of the console script against the real local model.

The local model's questions are weak; what is checked is which questions each filter keeps,
that the counts add up, and that what is written is what qa-eval reads."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.evaluate import evaluate, read_eval_set
from index.search import Searcher
from index.store import load_index
from qa_service.llm import GenerationError
from qa_service.testset import main
from qa_service.testset_generate import (
    ANSWERABLE,
    OUT_OF_SCOPE,
    Generator,
    Options,
    Source,
    collect,
    judge_answerable,
    judge_out_of_scope,
    passage_order,
    sources,
)
from qa_service.testset_rules import (
    answer_spans,
    copy_verdict,
    interleave,
    is_duplicate,
    may_answer,
    out_of_scope_verdict,
    question_key,
    reply_question,
    shared_run,
    spread,
    why_malformed,
    words_to_hold,
)

from .conftest import REPO

GRIMES = ("Healthcare is not like replacing your kitchen: care for one condition is affected by "
          "care for another.")
HOPES = "I have three hopes."


@pytest.mark.parametrize(("question", "why"), [
    ("What does Simon Duffy hope for from the new government?", None),
    ("what does the author actually want from the next administration", None),
    ("whats the nhs total annual budget in pounds", None),
    ("What did Dr. Roe say about waiting lists?", None),
    ("where's the money supposed to come from for the labour plan??", None),
    ("", "empty"),
    ("Why?", "too short"),
    ("What " + "about the plan for the hospital " * 6 + "?", "too long"),
    ("The NHS is our most precious institution.", "not a question"),
    ("What a great title! This review highlights human agency?", "more than one sentence"),
    ("What is it? And why does it matter?", "more than one question"),
    ("What is 12345 67890 12345 67890?", "garbage"),
    ("What is the the the the the the plan?", "garbage"),
    ("What does the passage say about taxation?", "refers to the passage"),
    ("Is it about that?", "no content words"),
])
def test_well_formed(question: str, why: str | None) -> None:
    assert why_malformed(question) == why


@pytest.mark.parametrize(("reply", "question"), [
    ("Question: What is the NHS plan?\nAnswer: a plan", "What is the NHS plan?"),
    ('"Who wrote it?" and then more', "Who wrote it?"),
    ("\n\n  what next? why? ", "what next?"),
    ("**Question:** Is it free?", "Is it free?"),
    ("What a great question to ask. How about this: What about the staff of the NHS?",
     "What about the staff of the NHS?"),
    ("What did Dr. Roe say? More text.", "What did Dr. Roe say?"),
    ("This passage is about the NHS.", "This passage is about the NHS."),
    ("", ""),
])
def test_reply_question(reply: str, question: str) -> None:
    assert reply_question(reply) == question


@pytest.mark.parametrize(("question", "copies"), [
    # Every content word (healthcar, like, replac, kitchen) is the passage's.
    ("Is healthcare like replacing a kitchen?", "100% of its content words are in the passage"),
    ("care for one condition is affected by what?", "100% of its content words are in the passage"),
    ("Why can't you treat illnesses one at a time?", None),
    # Two of four content words (50%): asked in the reader's words.
    ("Does Grimes compare healthcare to a kitchen?", None),
    # Under three content words the share is not counted: a search, not a copy.
    ("kitchen care?", None),
    # Five words in a row, though most content words are new.
    ("Does Grimes think healthcare is not like replacing a boiler?",
     "5 words in a row are the passage's"),
])
def test_copy_cap(question: str, copies: str | None) -> None:
    assert copy_verdict(question, GRIMES) == copies


def test_copy_cap_is_a_setting() -> None:
    question = "Does Grimes compare healthcare to a kitchen?"  # 2 of 4 content words
    assert copy_verdict(question, GRIMES, cap=0.4) is not None
    assert copy_verdict(question, GRIMES, cap=0.5) is None


@pytest.mark.parametrize(("question", "passage", "run"), [
    ("a b c", "x a b c y", 3),
    ("What Is The Plan", "what is the plan", 4),
    ("", "anything at all", 0),
    ("nothing shared here", "other words entirely", 0),
])
def test_shared_run(question: str, passage: str, run: int) -> None:
    assert shared_run(question, passage) == run


@pytest.mark.parametrize(("question", "kept", "duplicate"), [
    ("What does Simon Duffy hope for?", ["What does Simon Duffy hope for?"], True),
    ("What are Simon Duffy's hopes?", ["what does simon duffy hope"], True),
    ("Why did Labour create the NHS?", ["What does Simon Duffy hope for?"], False),
    # Three of four content words alike.
    ("What does Simon Duffy hope for the NHS?", ["What does Simon Duffy hope for?"], False),
    ("What does Simon Duffy hope for?", [], False),
])
def test_dedupe(question: str, kept: list[str], duplicate: bool) -> None:
    assert is_duplicate(question_key(question), [question_key(q) for q in kept]) is duplicate


def test_answer_spans_skip_what_cannot_be_an_answer() -> None:
    text = ("Health And Care\nBy Jane Roe\n2.\nThe council will close three hospitals next year "
            "to cut costs. Why? Because money ran out in the spring budget review.\nSee more.\n")
    spans = answer_spans(text)
    assert spans == ["The council will close three hospitals next year to cut costs.",
                     "Because money ran out in the spring budget review."]
    assert all(span in text for span in spans)
    assert answer_spans("The council will close three hospitals.") == []  # under 12 words


def _items() -> list[tuple[str, str, str, int]]:
    """(article, section, speaker, number): A has 6 body rows by X and 4 comments by Y and Z."""
    rows = [("A", "body", "X")] * 6 + [("A", "comment", "Y"), ("A", "comment", "Z")] * 2
    rows += [("B", "body", "W")] * 3 + [("C", "comment", "V")]
    return [(*row, number) for number, row in enumerate(rows)]


KEYS = [lambda item: item[0], lambda item: item[1], lambda item: item[2]]


def test_spread_takes_turns_over_articles_sections_and_speakers() -> None:
    items = _items()
    order = spread(items, KEYS, random.Random(0))
    assert sorted(order) == sorted(items)
    assert {item[0] for item in order[:3]} == {"A", "B", "C"}
    of_a = [item for item in order if item[0] == "A"]
    assert {item[1] for item in of_a[:2]} == {"body", "comment"}
    comments_of_a = [item[2] for item in of_a if item[1] == "comment"]
    assert {comments_of_a[0], comments_of_a[1]} == {"Y", "Z"}
    # Once B and C run out, A's rows follow, still alternating its sections.
    assert [item[1] for item in of_a[:8]] in (["body", "comment"] * 4, ["comment", "body"] * 4)


def test_spread_is_deterministic_for_a_seed() -> None:
    items = _items()
    assert spread(items, KEYS, random.Random(5)) == spread(items, KEYS, random.Random(5))
    orders = {tuple(spread(items, KEYS, random.Random(seed))) for seed in range(6)}
    assert len(orders) > 1


@pytest.mark.parametrize(("lists", "merged"), [
    ([[1, 2, 3], [4], [5, 6]], [1, 4, 5, 2, 6, 3]),
    ([[], [1]], [1]),
    ([], []),
])
def test_interleave(lists: list[list[int]], merged: list[int]) -> None:
    assert interleave(lists) == merged


@pytest.mark.parametrize(("terms", "needed"), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (8, 6)])
def test_words_to_hold(terms: int, needed: int) -> None:
    assert words_to_hold(terms) == needed


@pytest.mark.parametrize(("confident", "probability", "answered"), [
    (True, None, True), (False, None, False), (False, 0.49, False), (False, 0.5, True),
])
def test_may_answer(confident: bool, probability: float | None, answered: bool) -> None:
    assert may_answer(confident, probability) is answered


@pytest.mark.parametrize(("known", "answered", "holders", "why"), [
    (3, False, 0, None),
    (0, False, 0, "off topic"),
    (2, True, 0, "answered confidently"),
    (2, False, 1, "a passage holds its words"),
])
def test_out_of_scope_rule(known: int, answered: bool, holders: int, why: str | None) -> None:
    assert out_of_scope_verdict(known, answered, holders) == why


# On the sample index: the order passages are taken in, and the sentences they give.


def test_passage_order_spreads_over_articles_and_sections(sample_index: Path) -> None:
    index = load_index(sample_index)
    order = passage_order(index, seed=0)
    live = [row for row in range(len(index.chunks)) if index.chunks.live[row]]
    assert sorted(order) == live
    articles = [index.chunks[row].article_id for row in order]
    assert len(set(articles[:5])) == 5 == len(index.articles)
    # The first ten hold comments (3 of the 5 articles have some) as well as bodies.
    assert Counter(index.chunks[row].section for row in order[:10])["comment"] >= 3
    assert passage_order(index, seed=0) == order
    assert passage_order(index, seed=1) != order


def test_sources_are_sentences_of_their_article(sample_index: Path) -> None:
    index = load_index(sample_index)
    order = passage_order(index, seed=0)
    given = list(sources(index, order, seed=0))
    with_spans = [row for row in order if answer_spans(index.chunks[row].text)]
    first_round = given[: len(with_spans)]
    assert [source.chunk.id for source in first_round] == [index.chunks[r].id for r in with_spans]
    for source in given:
        assert source.span in source.chunk.text
        assert source.span in index.articles[source.chunk.article_id].text
    assert len(list(sources(index, order, seed=0, styles=3))) == 3 * len(given)
    assert {source.style for source in sources(index, order, seed=0, styles=2)} == {0, 1}


# The filters that search. The language model is an external service whose questions vary
# from run to run; a scripted stand-in for it says exactly what each filter must see, while the
# searcher, the index and the filters are the real ones. The real model runs end to end below.


class ScriptedModel:
    """Stands in for ChatModel: each call streams the next reply, or raises it."""

    base_url = "scripted"

    def __init__(self, replies: list[str | Exception]) -> None:
        self.replies = list(replies)

    def stream(self, messages: list[dict], max_tokens: int | None = None) -> Iterator[str]:
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        yield from re.findall(r"\S+\s*", reply)


@pytest.fixture
def hopes(searcher: Searcher) -> Source:
    chunk = next(c for c in searcher.index.chunks.live_chunks() if HOPES in c.text)
    return Source(chunk, HOPES)


def _generator(searcher: Searcher, replies: list[str | Exception], **options) -> Generator:
    options = Options(n=6, out_of_scope=2, **options)
    return Generator(ScriptedModel(replies), searcher, options, lambda _: None)


@pytest.mark.parametrize(("question", "dropped"), [
    ("what does duffy hope the next government will do", None),
    ("What does the passage say?", "malformed"),
    ("What are the three hopes for the new Government?", "copies_passage"),
    ("What is the weather on Mars tomorrow?", "round_trip"),
])
def test_answerable_filters(
    searcher: Searcher, hopes: Source, question: str, dropped: str | None
) -> None:
    verdict = judge_answerable(_generator(searcher, []), hopes, question)
    assert (verdict and verdict[0]) == dropped


@pytest.mark.parametrize(("question", "dropped"), [
    ("What did Richard Grimes pay for his kitchen last year?", None),
    ("How do I bake sourdough bread?", "off_topic"),
    ("What does Ed Mayo say about pensions and procurement?", "answered_confidently"),
    # His passage holds "kitchen" and "replacing", and his name is its speaker's.
    ("Did Richard Grimes replace his kitchen?", "passage_holds_words"),
])
def test_out_of_scope_filters(
    searcher: Searcher, hopes: Source, question: str, dropped: str | None
) -> None:
    verdict = judge_out_of_scope(_generator(searcher, []), hopes, question)
    assert (verdict and verdict[0]) == dropped


def test_collect_counts_each_filter(searcher: Searcher, hopes: Source) -> None:
    good = "what does duffy hope the next government will do"
    replies = [GenerationError("down"), "", "What does the passage say?",
               "What are the three hopes for the new Government?", good, good.capitalize() + "?",
               "What is the weather on Mars tomorrow?"]
    gen = _generator(searcher, replies, attempts=7)
    rows, funnel = collect(gen, ANSWERABLE, iter([hopes] * 10), wanted=3)
    assert funnel.dropped == Counter(
        model_failed=1, malformed=2, copies_passage=1, duplicate=1, round_trip=1
    )
    assert funnel.kept == 1 and funnel.asked == 7 == funnel.kept + sum(funnel.dropped.values())
    assert funnel.ending == "stopped: the budget of 7 attempts was spent"
    assert rows == [{"question": good, "article": hopes.chunk.article_id,
                     "must_contain_any": [HOPES], "speaker": hopes.chunk.speaker,
                     "generated": True}]


def test_collect_stops_when_enough_are_kept_or_nothing_is_left(
    searcher: Searcher, hopes: Source
) -> None:
    gen = _generator(searcher, ["How many nurses will work in Whitehall next year?"] * 3)
    rows, funnel = collect(gen, OUT_OF_SCOPE, iter([hopes] * 5), wanted=1)
    assert (funnel.asked, funnel.kept, funnel.ending) == (1, 1, "all wanted were kept")
    assert rows[0]["out_of_scope"] is True and rows[0]["must_contain_any"] == []
    rows, funnel = collect(_generator(searcher, ["Why?"]), ANSWERABLE, iter([hopes]), wanted=2)
    assert funnel.asked == 1 and funnel.ending.startswith("stopped: every sentence")


def test_a_model_that_keeps_failing_stops_the_run(searcher: Searcher, hopes: Source) -> None:
    from index.errors import QAError

    gen = _generator(searcher, [GenerationError("could not reach the language model")] * 3)
    with pytest.raises(QAError, match="failed 3 times in a row: could not reach"):
        collect(gen, ANSWERABLE, iter([hopes] * 5), wanted=2)


# The command line.


def test_without_a_language_model_it_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QA_LLM_URL", raising=False)
    assert main(["--index", str(tmp_path), "--n", "2"]) == 1
    err = capsys.readouterr().err
    assert "qa-testset: error: no language model is configured: set QA_LLM_URL" in err
    assert "Traceback" not in err


def test_a_missing_index_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QA_LLM_URL", "http://127.0.0.1:9/v1")
    assert main(["--index", str(tmp_path / "none"), "--n", "2"]) == 1
    assert "qa-testset: error: no index at" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args", [["--k", "0"], ["--n", "-1"], ["--overlap-cap", "1.5"], ["--attempts", "0"]]
)
def test_bad_options_are_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "qa-testset: error: argument" in capsys.readouterr().err


_SUMMARY = re.compile(
    r"qa-testset: (answerable|out of scope): "
    r"(\d+) kept of (\d+) wanted, (\d+) asked \(([^)]*)\); (.*)"
)


@pytest.mark.slow
def test_console_script_writes_what_qa_eval_reads(
    tmp_path: Path, sample_index: Path, local_llm: str, searcher: Searcher
) -> None:
    """`qa-testset` as a user runs it, against SmolLM2 in llama.cpp, on the sample index."""
    out = tmp_path / "testset.jsonl"
    env = {**os.environ, "QA_LLM_URL": local_llm, "QA_LLM_TIMEOUT_S": "120"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "qa-testset"), "--index", str(sample_index), "--n", "6",
         "--out-of-scope", "2", "--attempts", "16", "--out", str(out), "--verbose"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    funnels = {}
    for kind, kept, wanted, asked, drops, ending in _SUMMARY.findall(done.stderr):
        dropped = dict(part.rsplit(" ", 1) for part in drops.split(", "))
        dropped = {name: int(count) for name, count in dropped.items()}
        assert int(kept) + sum(dropped.values()) == int(asked) <= 16, done.stderr[-3000:]
        assert int(kept) == int(wanted) or "budget of 16 attempts" in ending
        funnels[kind] = int(kept)
    assert set(funnels) == {"answerable", "out of scope"}
    wrote = rf"wrote {sum(funnels.values())} questions to {re.escape(str(out))} in [\d.]+ s"
    assert re.search(wrote, done.stderr)

    questions = read_eval_set(out).questions
    answerable = [q for q in questions if not q.out_of_scope]
    out_of_scope = len(questions) - len(answerable)
    assert (len(answerable), out_of_scope) == (funnels["answerable"], funnels["out of scope"])
    assert all(json.loads(line)["generated"] is True for line in out.read_text().splitlines())
    index = load_index(sample_index)
    for question in answerable:
        (span,) = question.must_contain_any
        assert span in index.articles[question.article].text
        (source,) = [c for c in index.chunks.live_chunks()
                     if c.article_id == question.article and span in c.text]
        assert question.speaker == source.speaker
    # The round trip searched as qa-eval does: every kept question's passage is in its top 3,
    # and no out-of-scope one gets a short answer.
    scores = evaluate(searcher, questions)
    assert scores["hit_at_3"] == 1.0
    assert scores["out_of_scope_answered"] == 0
