"""The tables eight scenarios publish (issue 35): insights and abuse into docs/reliability.md;
models (`models-mteb`), judged, testset, composed, stream and followups into docs/quality.md.
Each renderer gets results of the shape its scenario produces, built with the scenario's own
functions and dataclasses around stand-ins for the server, the model and the index, so nothing
here needs the language model or minutes of CPU."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from bench import abuse, composed, followup_rewrite, insights_scale, judged_calibration, model_check
from bench import stream_latency, testset
from bench.publish import ROOT, Table, publish, read_blocks
from index.evaluate import evaluate, parse_eval_set
from index.records import Answer, ArticleRecord, Chunk, Highlight, Passage, SearchResult
from qa_service.citations import CheckedSentence
from qa_service.compose import ComposedAnswer
from qa_service.judgments import Summary, Week
from qa_service.llm import GenerationError
from qa_service.question_log import EMBEDDED_PER_CALL
from qa_service.testset import Report
from qa_service.testset_generate import ANSWERABLE_FILTERS, OUT_OF_SCOPE_FILTERS, Funnel, Options

QUALITY = ROOT / "docs" / "quality.md"
RELIABILITY = ROOT / "docs" / "reliability.md"


def rows_of(markdown: str) -> list[list[str]]:
    """The table's rows (the header first, the separator left out), each a list of cells."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if not line.startswith("| ---")]


def note_of(markdown: str) -> str:
    return "\n".join(line for line in markdown.splitlines() if line and not line.startswith("|"))


def passage(article: str, text: str, rank: int = 1, speaker: str | None = None) -> Passage:
    chunk = Chunk(f"{article}-{rank}", article, text, 0, len(text), "body", speaker, "hash")
    return Passage(rank, 1.0, 0.5, chunk, ArticleRecord(article, text, "hash"), Highlight(0, len(text)))


class Searcher:
    """Stands in for index.search.Searcher: a SearchResult per question, low and empty otherwise."""

    def __init__(self, results: dict[str, SearchResult]) -> None:
        self.results = results

    def search(self, question: str, top_k: int | None = None, mode=None, history=None) -> SearchResult:
        return self.results.get(question) or SearchResult(question, [], "none", None, "v1")


# insights (docs/reliability.md)

def insights_results() -> dict:
    """`insights_scale.measure`'s figures: five calls, the first three each embedding 100 more."""
    calls = [{"wall_s": wall, "cpu_s": wall * 1.5, "grouped": grouped}
             for wall, grouped in [(1.642, 100), (1.351, 200), (1.718, 300), (0.811, 300), (1.04, 300)]]
    return {"questions": 100_000, "unanswered_rows": 20_000, "unanswered_wordings": 17_943,
            "distinct_unanswered_written": 17_943, "groups_shown": 20, "largest_group": None,
            "fill_s": 3.1, "load_average": "7.02 6.50 5.10", "calls": calls}


def test_insights_table_splits_the_calls_that_embedded_from_those_after() -> None:
    rendered = insights_scale.table(insights_results())
    header, row = rows_of(rendered)
    assert header == ["`GET /admin/insights`, question log of", "unanswered (distinct)",
                      f"first 3 calls (each embeds {EMBEDDED_PER_CALL} of the 300 grouped)", "the next 2", "target"]
    assert row == ["100,000 questions", "20,000 (17,943)", "1.64, 1.35, 1.72 s", "0.81, 1.04 s", "2 s"]
    assert "load average 7.02 6.50 5.10" in note_of(rendered) and "target met" in note_of(rendered)


# abuse (docs/reliability.md)

def abuse_figures() -> dict:
    """`abuse._abuse`'s figures, the normal reader's through `Load.normal_ask` and `_latency`."""
    args = argparse.Namespace(histories=0)
    load = abuse.Load(1, 1, args)
    load.statuses["normal"].update({200: 491})
    load.normal_s = [0.040 + n * 0.0001 for n in range(490)] + [0.116]
    return {"machine_cpus": 2, "load_average_at_end": "0.90 1.10 1.00", "run_s": 275.4,
            "finished_within_max_s": True, "rss_mb_at_start": 316.0, "rss_mb_peak_sampled": 449.0,
            "rss_mb_peak_vmhwm": 450.2, "rss_mb_5s_after": 440.0, "requests": {},
            "normal_ask_without_load": abuse._latency([0.022] * 29 + [0.026]), "normal_ask": load.normal_ask(),
            "search_cache": {}}


def test_abuse_table_is_the_normal_readers_latency_and_the_peak_memory() -> None:
    figures = abuse_figures()
    rendered = abuse.table(figures)
    header, row = rows_of(rendered)
    assert header == ["the normal reader during the run", "answered", "p50", "p99", "the server's peak RSS (VmHWM)"]
    normal = figures["normal_ask"]
    assert row[1:] == ["491 of 491", f"{normal['p50_ms']:.0f} ms", f"{normal['p99_ms']:.0f} ms", "450 MB"]
    assert "without the load: p50 22 ms, p99 26 ms" in note_of(rendered)
    assert "(both met)" in note_of(rendered)


def test_abuse_table_says_which_target_was_missed() -> None:
    figures = abuse_figures()
    figures["rss_mb_peak_vmhwm"] = 2000.0
    figures["finished_within_max_s"] = False
    note = note_of(abuse.table(figures))
    assert "(p99 met, memory not)" in note and "did not finish" in note


# models-mteb (docs/quality.md)

def tiny_beir(folder: Path) -> Path:
    """A BEIR folder of four documents and two queries, for load_beir."""
    folder.mkdir(parents=True)
    docs = [{"_id": f"d{n}", "title": f"title {n}", "text": f"text {n}"} for n in range(4)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "one"}\n{"_id": "q2", "text": "two"}\n')
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return folder


class StubEncoder:
    """Each text's vector is a one-hot of the digit it holds: query "one" finds document 1,
    query "two" document 2 (not the relevant d3)."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def encode(self, texts: list[str]) -> np.ndarray:
        words = {"one": 1, "two": 2}
        vectors = np.zeros((len(texts), 4), dtype=np.float32)
        for row, text in enumerate(texts):
            digit = words.get(text, int(re.search(r"\d", text).group()) if re.search(r"\d", text) else 0)
            vectors[row, digit] = 1.0
        return vectors


@pytest.fixture
def stub_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(model_check, "Encoder", StubEncoder)
    return tiny_beir(tmp_path / "bench" / "scifact").parent


def test_models_table_is_this_copy_against_the_published_figures(stub_model: Path) -> None:
    results = model_check.measure("sentence-transformers/all-mpnet-base-v2", stub_model / "scifact", 16)
    rendered = model_check.table(results)
    header, ours, published = rows_of(rendered)
    assert header == ["dense search alone, SciFact's 4 whole documents, 2 test queries, exact cosine",
                      "nDCG@10", "Recall@100"]
    assert results["recall_at_100"] == 1.0 and 0 < results["ndcg_at_10"] < 1
    assert ours == ["all-mpnet-base-v2 as loaded here", f"**{results['ndcg_at_10']:.4f}**", "1.0000"]
    assert published[1:] == ["0.6557", "0.9417"]
    assert f"{results['embed_s']:,} s" in note_of(rendered)


def test_models_table_of_a_model_without_published_figures_has_one_row(stub_model: Path) -> None:
    results = model_check.measure("my-own-model", stub_model / "scifact", 16)
    assert len(rows_of(model_check.table(results))) == 2


# judged (docs/quality.md)

def judged_figures() -> dict:
    """`judged_calibration.measure`'s figures: the report half scored by index.evaluate (qa-eval
    --json's dict) and the admin summary as the API returns it."""
    rows = [{"question": f"q{n}", "article": "a", "must_contain_any": ["span"]} for n in range(4)]
    rows += [{"question": "away", "out_of_scope": True}]
    right = passage("a", "the span is here")
    results = {
        "q0": SearchResult("q0", [right], "high", Answer("span", None, 1), "v1", probability=0.9),
        "q1": SearchResult("q1", [passage("b", "elsewhere")], "high", Answer("x", None, 1), "v1", probability=0.8),
        "q2": SearchResult("q2", [right], "low", None, "v1", probability=0.3),
    }
    report = evaluate(Searcher(results), parse_eval_set([json.dumps(r) for r in rows], "report").questions)
    report.pop("details")
    summary = asdict(Summary([Week("2026-12-07", 8, 7, 0.875)], judged=50, not_in_archive=10))
    return {"questions": 10, "judged_half": 5, "report_half": 5, "asked": 10, "judged_answers": 40,
            "judged_not_in_archive": 10, "span_not_found": 0, "exported_rows": 50, "cli_export_same": True,
            "judged_summary": json.loads(json.dumps(summary)), "report": json.loads(json.dumps(report))}


def test_judged_table_is_the_fitted_calibration_on_the_report_half() -> None:
    rendered = judged_calibration.table(judged_figures())
    header, row = rows_of(rendered)
    assert header == ["", "judged", "exported rows", "confident on the report half", "right", "precision",
                      "coverage (of 4 answerable)", "out of scope answered"]
    assert row == ["calibration from 50 judged questions", "40 answers + 10 not in the archive", "50", "2", "1",
                   "**0.50**", "0.250", "0 of 1"]
    assert note_of(rendered) == ("The admin summary of the judged half with the shipped calibration: "
                                 "8 confident, 7 right (0.875).")


def test_judged_note_says_what_was_not_judged() -> None:
    figures = judged_figures() | {"span_not_found": 2, "cli_export_same": False}
    note = note_of(judged_calibration.table(figures))
    assert "span not found in its article): 2" in note and "did not give the same rows" in note


# testset (docs/quality.md)

def funnel_figures(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """`testset.measure`'s figures, around a run_testset that reports two funnels."""
    answerable = Funnel("answerable", ANSWERABLE_FILTERS, 200, 800, asked=720, kept=200, ending="enough kept",
                        dropped=Counter({"malformed": 98, "copies_passage": 199, "duplicate": 17, "round_trip": 206}))
    out = Funnel("out of scope", OUT_OF_SCOPE_FILTERS, 20, 80, asked=61, kept=20, ending="enough kept",
                 dropped=Counter({"malformed": 5, "duplicate": 5, "answered_confidently": 26,
                                  "passage_holds_words": 5}))
    report = Report([{}] * 220, [answerable, out], 310.14, 300.2, 9.1)
    monkeypatch.setattr(testset, "run_testset", lambda settings, options, log: report)
    figures = testset.measure(tmp_path, "http://127.0.0.1:1/v1", Options(200, 20))
    return figures | {"llm": "The bundled SmolLM2-135M-Instruct.Q4_1.gguf", "index": "the index `index`"}


def test_testset_table_is_each_kinds_funnel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rendered = testset.table(funnel_figures(monkeypatch, tmp_path))
    header, answerable, out = rows_of(rendered)
    assert header == ["kind", "wanted", "asked", "kept", "model failed", "malformed", "copies the passage",
                      "duplicate", "round trip failed", "off topic", "answered confidently", "passage holds its words"]
    assert answerable == ["answerable", "200", "720", "200", "0", "98", "199", "17", "206", "", "", ""]
    assert out == ["out of scope", "20", "61", "20", "0", "5", "", "5", "", "0", "26", "5"]
    assert sum(int(cell) for cell in answerable[4:] if cell) + 200 == 720
    assert "220 questions in 310.1 s (the model 300.2 s, searches 9.1 s; 0.4 s a question asked)" in rendered


# composed (docs/quality.md)

class StubComposer:
    """Stands in for qa_service.compose.Composer: composes confident searches, and checks a
    reply's sentences as `verdicts` (by question) say."""

    passages = 3

    def __init__(self, verdicts: dict[str, list[str | None]]) -> None:
        self.verdicts = verdicts

    @staticmethod
    def wants(result: SearchResult) -> bool:
        return result.confidence == "high" and bool(result.passages)

    def stream(self, result: SearchResult):
        if not self.verdicts[result.question]:
            raise GenerationError("the model is down")
        yield from ["Some words [1]. ", "More words [1]."]

    def check(self, result: SearchResult, text: str, started: float) -> ComposedAnswer:
        sentences = [CheckedSentence(f"s{n}", [1], reason is None, reason, 0.5)
                     for n, reason in enumerate(self.verdicts[result.question])]
        return ComposedAnswer(" ".join(s.text for s in sentences if s.supported), sentences, "m", 1.0)


def composed_results() -> dict:
    """`composed.main`'s results: two SETs composed by compose_all and summarised."""
    verdicts = {"q0": [None, "not supported (0.41)"], "q1": ["no citation"], "q2": [], "q3": [None]}
    searcher = Searcher({q: SearchResult(q, [passage("a", "text")], "high", Answer("x", None, 1), "v1")
                         for q in verdicts} | {"q4": SearchResult("q4", [passage("a", "t")], "low", None, "v1")})
    composer = StubComposer(verdicts)
    sets = {"tune+eval/extra.jsonl": ["q0", "q1", "q2", "q4"], "report": ["q3"]}
    results = {"min_support": 0.6, "min_new_terms": 0.75, "sets": []}
    for spec, asked in sets.items():
        questions = parse_eval_set([json.dumps({"question": q, "out_of_scope": True}) for q in asked], spec).questions
        tally = composed.compose_all(searcher, composer, questions)
        results["sets"].append(composed.summary(spec, tally, len(questions)))
    return results


def test_composed_table_has_a_row_per_set_and_the_report_half_in_bold() -> None:
    results = composed_results()
    rendered = composed.table(results)
    header, tune, report = rows_of(rendered)
    assert header == ["set", "answers with a supported sentence", "sentences dropped"]
    assert tune == ["tune half + `eval/extra.jsonl` (4 questions)", "1 of 2", "2 of 3"]
    assert report == ["**report half (1 question)**", "**1 of 1**", "**0 of 1**"]
    note = note_of(rendered)
    assert "QA_LLM_MIN_SUPPORT 0.6" in note
    assert "tune half + `eval/extra.jsonl`: 2 of 4 composed; dropped: not supported 1, no citation 1; model errors 1" in note


def test_composed_sets_are_files_joined_by_plus(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text('{"question": "one", "out_of_scope": true}\n')
    second.write_text('{"question": "two", "out_of_scope": true}\n')
    [(spec, eval_set)] = composed.read_sets([f"{first}+{second}"])
    assert spec == f"{first}+{second}" and [q.question for q in eval_set.questions] == ["one", "two"]
    assert composed.set_label("tune+x.jsonl") == "tune half + `x.jsonl`"
    assert composed.set_label("-") == "standard input"


# stream (docs/quality.md)

def test_stream_table_is_p50_p90_and_max_of_each_event() -> None:
    passages = [0.02] * 9 + [0.05]
    firsts = [1.0 + n / 10 for n in range(8)]
    results = stream_latency.summarise(10, passages, firsts, [f + 0.5 for f in firsts])
    rendered = stream_latency.table(results)
    header, *rows = rows_of(rendered)
    assert header == ["`POST /ask/stream`, top_k 3", "p50", "p90", "max"]
    assert rows == [
        ["the `passages` event", "0.02 s", "0.02 s", "0.05 s"],
        ["the first `delta` (target 1.5 s)", "1.35 s", "1.70 s", "1.70 s"],
        ["`done`, the checked answer (target 10 s)", "1.85 s", "2.20 s", "2.20 s"],
    ]
    assert note_of(rendered).startswith("8 of the 10 questions composed")


def test_stream_table_of_a_run_that_composed_nothing() -> None:
    rows = rows_of(stream_latency.table(stream_latency.summarise(2, [0.1, 0.2], [], [])))
    assert rows[2][1:] == ["–", "–", "–"]


# followups (docs/quality.md)

class StubRewriter:
    def __init__(self, rewrites: dict[str, str | None]) -> None:
        self.rewrites = rewrites

    def rewrite(self, question: str, history) -> str:
        if self.rewrites[question] is None:
            raise GenerationError("not a rewrite")
        return self.rewrites[question]


def followups_results() -> list[dict]:
    """`followup_rewrite.main`'s results: two SETs measured by measure_set."""
    right = passage("a", "the span is here", speaker="Ann")
    searcher = Searcher({
        "first": SearchResult("first", [right], "high", None, "v1"),
        "what did she say?": SearchResult("q", [passage("b", "no"), passage("b", "no", 2)], "low", None, "v1"),
        "what did Ann say?": SearchResult("q", [passage("b", "no"), passage("a", "span", 2, "Ann")], "low", None, "v1"),
        "and then?": SearchResult("q", [right], "low", None, "v1"),
    })
    conversation = {"turns": [{"question": "first", "out_of_scope": True},
                              {"question": "what did she say?", "article": "a", "must_contain_any": ["span"],
                               "speaker": "Ann"},
                              {"question": "and then?", "article": "a", "must_contain_any": ["span"]}]}
    rewriter = StubRewriter({"what did she say?": "what did Ann say?", "and then?": None})
    conversations = parse_eval_set([json.dumps(conversation)], "set").conversations
    return [{"set": spec, **followup_rewrite.measure_set(searcher, rewriter, conversations)}
            for spec in ("tune", "report")]


def test_followups_table_is_hit_and_speaker_as_asked_and_rewritten() -> None:
    rendered = followup_rewrite.table(followups_results())
    header, tune, report = rows_of(rendered)
    assert header == ["follow-up turns", "as asked: hit@3 / speaker",
                      "rewritten (`QA_LLM_REWRITE_FOLLOWUPS`): hit@3 / speaker", "rewrites not usable (searched as asked)"]
    assert tune == ["tune half (2)", "0.500 / 0.000", "1.000 / 1.000", "1"]
    assert report == [f"**{cell}**" for cell in ["report half (2)", "0.500 / 0.000", "1.000 / 1.000", "1"]]
    assert "(4 follow-ups, in process)" in note_of(rendered)


# Each renderer replaces like with like: its columns are those of the block it republishes.

@pytest.mark.parametrize("doc, name, rendered", [
    (RELIABILITY, "insights", lambda: insights_scale.table(insights_results())),
    (RELIABILITY, "abuse", lambda: abuse.table(abuse_figures())),
    (QUALITY, "judged", lambda: judged_calibration.table(judged_figures())),
    (QUALITY, "stream", lambda: stream_latency.table(stream_latency.summarise(1, [0.1], [1.0], [2.0]))),
    (QUALITY, "followups", lambda: followup_rewrite.table(followups_results())),
], ids=lambda value: value if isinstance(value, str) else "")
def test_a_table_has_the_columns_of_the_block_it_replaces(doc: Path, name: str, rendered) -> None:
    current = read_blocks(doc.read_text(encoding="utf-8"))[name]
    assert len(rows_of(rendered())[0]) == len(rows_of(current.body)[0])


def test_publishing_into_quality_md_replaces_only_its_block(stub_model: Path, tmp_path: Path) -> None:
    doc = tmp_path / "quality.md"
    doc.write_text(QUALITY.read_text(encoding="utf-8"), encoding="utf-8")
    before = doc.read_text(encoding="utf-8")
    argv = ["--model", "all-mpnet-base-v2", "--bench", str(stub_model), "--publish", "--doc", str(doc)]
    assert model_check.main(argv) == 0
    after = doc.read_text(encoding="utf-8")
    opener, closer = "<!-- table: models-mteb -->", "<!-- /table: models-mteb -->"
    assert before[:before.index(opener)] == after[:after.index(opener)]
    assert before[before.index(closer):] == after[after.index(closer):]
    block = read_blocks(after)["models-mteb"]
    assert block.command == f"python -m bench models --model all-mpnet-base-v2 --bench {stub_model}"
    again = model_check.measure("all-mpnet-base-v2", stub_model / "scifact", 16)
    assert rows_of(block.body) == rows_of(model_check.table(again))
    others = {name: b for name, b in read_blocks(before).items() if name != "models-mteb"}
    assert others == {name: b for name, b in read_blocks(after).items() if name != "models-mteb"}


def test_a_judged_table_republished_into_quality_md_reads_back(tmp_path: Path) -> None:
    doc = tmp_path / "quality.md"
    doc.write_text(QUALITY.read_text(encoding="utf-8"), encoding="utf-8")
    body = judged_calibration.table(judged_figures())
    publish(doc, [Table("judged", body, "## Judged questions")], "python -m bench judged --index IDX",
            commit="abcdef1", day="2026-12-08")
    block = read_blocks(doc.read_text(encoding="utf-8"))["judged"]
    assert (block.body, block.command, block.commit, block.day) == (
        body, "python -m bench judged --index IDX", "abcdef1", "2026-12-08")
