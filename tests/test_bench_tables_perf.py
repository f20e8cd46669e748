"""The performance scenarios' tables (segments, swap, replicas, ray, search-cache, log-cost,
sync, serving-memory): each renderer on results of the shape its scenario produces, the figures
in the cells being the results' own, and a publish that rewrites one block of a copy of
docs/benchmarks.md and leaves every other byte as it was. The heavy scenarios are not run;
search-cache, log-cost and sync are, at a tiny size."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from bench import (
    question_log_cost,
    ray_ingest,
    replicas_throughput,
    search_cache,
    segment_latency,
    serving_memory,
    swap_memory,
    sync_feed,
)
from bench.publish import Table, publish, read_blocks, render_block
from bench.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
MODULES = {
    "segments": segment_latency,
    "swap": swap_memory,
    "replicas": replicas_throughput,
    "ray": ray_ingest,
    "search-cache": search_cache,
    "log-cost": question_log_cost,
    "sync": sync_feed,
    "serving-memory": serving_memory,
}


def grid(body: str) -> list[list[str]]:
    """The markdown table at the top of `body`: its header, then its rows (the rule left out)."""
    rows = []
    for line in body.splitlines():
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if not all(re.fullmatch(r"-+", cell) for cell in cells):
            rows.append(cells)
    return rows


def note(body: str) -> str:
    return body.split("\n\n", 1)[1]


def columns(name: str) -> list[str]:
    """The header of the table in block `name` of the repository's docs/benchmarks.md."""
    return grid(read_blocks(DOC.read_text(encoding="utf-8"))[name].body)[0]


# -- results of the shape each scenario produces -------------------------------------------

def segments_results() -> dict:
    return {"machine": {"cpus": 2}, "base_articles": 10_000, "adds": 1_000, "questions": 300, "rounds": 3,
            "add_s_p50": 0.0412, "add_s_max": 1.873,
            "segmented": {"segments": 2, "chunks": 33_000, "p50_ms": 40.98, "p90_ms": 52.8},
            "merged": {"segments": 1, "chunks": 33_000, "p50_ms": 40.2, "p90_ms": 52.35}, "p50_ratio": 1.019}


def swap_results() -> list[swap_memory.SwapMemory]:
    return [swap_memory.SwapMemory(articles=1_000_000, chunks=3_000_000, steady_rss_mb=3817.3, swaps=4,
                                   peak_rss_mb=[4009.5, 4072.3, 4074.9, 4099.3], peak_over_steady=0.0739,
                                   after_rss_mb=4041.4, steady_p50_ms=77.61, steady_max_ms=145.8, swap_p50_ms=79.94,
                                   swap_max_ms=262.1, errors=0),
            swap_memory.SwapMemory(articles=100_000, chunks=300_000, steady_rss_mb=1091.7, swaps=4,
                                   peak_rss_mb=[1108.8, 1134.5, 1138.7, 1138.7], peak_over_steady=0.0431,
                                   after_rss_mb=1138.7, steady_p50_ms=13.9, steady_max_ms=20.2, swap_p50_ms=14.4,
                                   swap_max_ms=35.5, errors=0)]


def replicas_results() -> list[replicas_throughput.ReplicaThroughput]:
    runs = [(1, "0", 56.5, 69.9, 97.3), (2, "0 1", 104.5, 37.4, 73.2), (1, "0", 57.7, 68.1, 98.3),
            (2, "0 1", 102.8, 37.9, 75.4)]
    return [replicas_throughput.ReplicaThroughput(replicas=n, cpus=cpus, articles=100_000, clients=4, requests=1000,
                                                  errors=0, requests_per_s=rate, p50_ms=p50, p99_ms=p99)
            for n, cpus, rate, p50, p99 in runs]


def ray_result() -> ray_ingest.RayIngest:
    return ray_ingest.RayIngest(
        documents=300, chunks=1292, local_chunks_per_s=36.0, ray_chunks_per_s=37.9, ratio=1.052,
        local_runs_s=[35.1, 36.2, 35.8], ray_runs_s=[34.0, 34.1, 34.3], ray_start_s=6.6, encoders_ready_s=7.6,
        encoders=2, ray_stages_s={"model": 0.0, "load": 0.14, "chunk": 1.11, "embed": 32.7, "publish": 0.3},
        local_stages_s={"model": 0.0, "load": 0.01, "chunk": 1.72, "embed": 34.1, "publish": 0.2})


def serving_memory_results() -> dict:
    """Stages measured in this process by the scenario's own functions, with the scenario's labels."""
    stages: list[dict] = []
    for name in ("python", "imports (faiss, onnxruntime, ...)", "question path (ONNX Runtime)",
                 "index (1,000,000 chunks)", "after 300 questions"):
        serving_memory._stage(stages, name)
    return {"stages": stages, "chunks": 1_000_000, "questions": 300, "torch_loaded": False,
            "largest_mappings": serving_memory.largest_mappings()}


# -- the renderers ----------------------------------------------------------------------------

def test_segments_table_gives_both_indexes_and_the_target() -> None:
    results = segments_results()
    rows = grid(segment_latency.table(results))
    assert rows[0] == columns("segments") == ["index", "segments", "chunks", "p50 ms", "p90 ms"]
    assert rows[1][0].startswith("10,000 synthetic articles, then 1,000 single-article adds")
    assert rows[1][1:] == ["2", "33,000", "40.98", "52.80"]
    assert rows[2] == ["the same, fully merged", "1", "33,000", "40.20", "52.35"]
    text = note(segment_latency.table(results))
    assert "300 SciFact claims, 3 alternating rounds" in text and "(+1.9%, met)" in text
    assert "0.0412 s at the median, 1.873 s at most" in text
    assert "(+12.0%, missed)" in note(segment_latency.table({**results, "p50_ratio": 1.12}))


def test_swap_table_has_a_row_per_size_smallest_first() -> None:
    rows = grid(swap_memory.table(swap_results()))
    assert rows[0] == columns("swap")
    assert rows[1] == ["100,000", "300,000", "1,091.7", "1,108.8, 1,134.5, 1,138.7, 1,138.7", "+4.3%", "1,138.7",
                       "13.9 / 20.2", "14.4 / 35.5"]
    assert rows[2] == ["1,000,000", "3,000,000", "3,817.3", "4,009.5, 4,072.3, 4,074.9, 4,099.3", "+7.4%",
                       "4,041.4", "77.6 / 145.8", "79.9 / 262.1"]
    text = note(swap_memory.table(swap_results()))
    assert "4 per size" in text and "(0 errors)" in text and "(met)" in text


def test_replicas_table_keeps_the_runs_in_order_and_says_the_speedups() -> None:
    results = replicas_results()
    body = replicas_throughput.table(results)
    rows = grid(body)
    assert rows[0] == columns("replicas") == ["replicas", "CPUs", "questions/s", "p50 ms", "p99 ms", "errors"]
    assert rows[1:] == [[str(r.replicas), r.cpus.replace(" ", ", "), str(r.requests_per_s), str(r.p50_ms),
                         str(r.p99_ms), "0"] for r in results]
    assert rows[2][1] == "0, 1"
    assert "100,000-article index" in note(body) and "4 clients" in note(body) and "1,000 questions a run" in note(body)
    assert "1.85× and 1.78× as many questions as one (target ≥ 1.7×, met)" in note(body)


def test_ray_table_gives_the_rates_the_ratio_and_three_stages() -> None:
    body = ray_ingest.table(ray_result())
    rows = grid(body)
    assert rows[0] == columns("ray")
    assert rows[1:] == [["300 (3 runs each)", "1,292", "36.0", "37.9", "1.052", "0.14 / 1.11 / 32.70",
                         "0.01 / 1.72 / 34.10"]]
    assert "(2 encoder actors)" in note(body) and "starting Ray 6.6 s" in note(body) and "loads 7.6 s" in note(body)
    assert "(met)" in note(body)
    one_run = ray_ingest.RayIngest(**{**vars(ray_result()), "local_runs_s": [40.0], "ray_runs_s": [30.0],
                                      "ray_stages_s": {}, "ratio": 0.8})
    assert grid(ray_ingest.table(one_run))[1][0] == "300 (1 run each)"
    assert grid(ray_ingest.table(one_run))[1][5] == "– / – / –" and "(missed)" in ray_ingest.table(one_run)


def test_serving_memory_table_has_a_row_per_stage() -> None:
    profile = serving_memory_results()
    body = serving_memory.table(profile)
    rows = grid(body)
    assert rows[0] == columns("serving-memory") == ["stage", "RSS MB", "anonymous MB"]
    assert rows[1:] == [[s["stage"], f"{s['rss_mb']:,.1f}", f"{s['anon_mb']:,.1f}"] for s in profile["stages"]]
    assert "300 SciFact claims" in note(body) and "Torch loaded: no" in note(body)
    last = profile["stages"][-1]
    for rss, verdict in ((1191.5, "met"), (1600.0, "missed")):
        stages = [*profile["stages"][:-1], {**last, "rss_mb": rss}]
        assert f"Target: at most 1.5 GB (1,536 MB) at 1M chunks ({verdict})" in serving_memory.table(
            {**profile, "stages": stages})
    assert "Target" not in serving_memory.table({**profile, "chunks": 60})  # the target is for 1M chunks


@pytest.mark.slow
def test_sync_table_from_a_real_tiny_run_at_two_paces() -> None:
    results = [sync_feed.measure(4, rate) for rate in (sync_feed.DEFAULT_RATE, 1000.0)]
    body = sync_feed.table(results)
    rows = grid(body)
    assert rows[0][1:] == columns("sync")[1:] and rows[0][0] == "4 synthetic feed items on 127.0.0.1"
    assert [row[0] for row in rows[1:]] == [
        f"first, default pace ({sync_feed.DEFAULT_RATE:g} requests a second to the host)", "second, nothing changed",
        "first, `--rate 1000`", "second, `--rate 1000`"]
    figures = [result[run] for result in results for run in ("first", "second")]
    assert [row[1:] for row in rows[1:]] == [[str(f["seconds"]), str(f["new"]), str(f["unchanged"]),
                                              str(f["requests"]), str(f["conditional_requests"])] for f in figures]
    assert [row[2:4] for row in rows[1:]] == [["4", "0"], ["0", "4"]] * 2  # new, then unchanged
    assert "0 pages failed" in note(body) and "(met:" in note(body)


@pytest.fixture(scope="module")
def eval_questions() -> Path:
    if not search_cache.EVAL.exists():
        pytest.skip(f"{search_cache.EVAL} is not there")
    return search_cache.EVAL


@pytest.mark.slow
def test_search_cache_table_from_a_real_run_on_the_sample_index(sample_index: Path, encoder, eval_questions) -> None:
    runs = [search_cache.measure(sample_index, 1, encoder)]
    runs.append({**runs[0], search_cache.FIRST: {**runs[0][search_cache.FIRST], "p50_ms": 1.5}})  # a second run
    body = search_cache.table(runs)
    rows = grid(body)
    assert rows[0] == columns("search-cache") == ["`/ask`, sample index", "run 1 p50", "run 2 p50"]
    published = grid(read_blocks(DOC.read_text(encoding="utf-8"))["search-cache"].body)
    assert [row[0] for row in rows[1:]] == [row[0] for row in published[1:]]  # the same rows as today's
    floor, first = runs[0][search_cache.FLOOR]["p50_ms"], runs[0][search_cache.FIRST]["p50_ms"]
    assert rows[1][1] == f"{floor:.2f} ms"
    assert rows[2][1] == f"{first:.2f} ms ({first / floor:.2f}× the floor)"
    assert rows[2][2] == f"1.50 ms ({1.5 / floor:.2f}×)"
    assert rows[3][1] == f"{runs[0]['cache off']['p50_ms']:.2f} ms"
    assert rows[4][1] == f"{runs[0]['cache on']['p50_ms']:.2f} ms"
    questions = runs[0][search_cache.FIRST]["requests"]
    assert f"Each of the {questions} questions asked once, then 1 rounds ({questions} requests)" in note(body)
    assert re.search(r"Target: p50 at most twice the floor \((met|missed)\)", note(body))


@pytest.mark.slow
def test_log_cost_table_from_a_real_run_on_the_sample_index(sample_index: Path, encoder, eval_questions) -> None:
    figures = question_log_cost.measure(sample_index, 1, 1, encoder)
    body = question_log_cost.table(figures)
    rows = grid(body)
    requests = figures["log on"]["requests"]
    assert rows[0] == [f"`/ask`, sample index, {requests} requests each", "p50", "p99"]
    assert rows[0][1:] == columns("log-cost")[1:]
    assert rows[1:] == [["question log on (`QA_QUESTION_LOG_DAYS=30`)", f"{figures['log on']['p50_ms']} ms",
                         f"{figures['log on']['p99_ms']} ms"],
                        ["question log off (`0`)", f"{figures['log off']['p50_ms']} ms",
                         f"{figures['log off']['p99_ms']} ms"]]
    assert f"Target: under 1 ms at p50 ({figures['p50 difference ms']} ms, " in note(body)


# -- main: --publish, and the markdown printed without it --------------------------------------

@pytest.mark.parametrize("scenario", sorted(MODULES))
def test_each_scenario_takes_publish_and_doc(scenario: str, capsys: pytest.CaptureFixture) -> None:
    assert SCENARIOS[scenario].module == MODULES[scenario].__name__
    assert f'"{scenario}"' in Path(MODULES[scenario].__file__).read_text()  # its block, its provenance
    with pytest.raises(SystemExit) as done:
        importlib.import_module(SCENARIOS[scenario].module).main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--publish" in out and "--doc" in out and "docs/benchmarks.md" in out


def _outside(text: str, name: str) -> tuple[str, str]:
    """The text before block `name`'s opening marker and after its closing one."""
    start = text.index(f"<!-- table: {name} -->")
    end = text.index(f"<!-- /table: {name} -->") + len(f"<!-- /table: {name} -->")
    return text[:start], text[end:]


@pytest.mark.slow
def test_sync_main_prints_the_table_and_publishes_only_its_block(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_bytes(DOC.read_bytes())
    assert sync_feed.main(["--pages", "3", "--rate", "1000"]) == 0
    printed = capsys.readouterr().out
    assert "| 3 synthetic feed items on 127.0.0.1 | seconds |" in printed and doc.read_bytes() == DOC.read_bytes()
    assert sync_feed.main(["--pages", "3", "--rate", "1000", "--publish", "--doc", str(doc)]) == 0
    assert f"published sync into {doc}" in capsys.readouterr().out
    before, after = DOC.read_text(encoding="utf-8"), doc.read_text(encoding="utf-8")
    assert _outside(after, "sync") == _outside(before, "sync")
    block = read_blocks(after)["sync"]
    assert block.command == "python -m bench sync --pages 3 --rate 1000"
    assert grid(block.body)[0][0] == "3 synthetic feed items on 127.0.0.1" and len(grid(block.body)) == 3
    others = {name: b for name, b in read_blocks(before).items() if name != "sync"}
    assert {name: b for name, b in read_blocks(after).items() if name != "sync"} == others


def test_publishing_every_table_replaces_its_block_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_bytes(DOC.read_bytes())
    bodies = {"segments": segment_latency.table(segments_results()), "swap": swap_memory.table(swap_results()),
              "replicas": replicas_throughput.table(replicas_results()), "ray": ray_ingest.table(ray_result()),
              "serving-memory": serving_memory.table(serving_memory_results())}
    expected = DOC.read_text(encoding="utf-8")
    for name, body in bodies.items():
        table = Table(name, body, MODULES[name].HEADING)
        publish(doc, [table], f"python -m bench {name}", commit="abc1234", day="2026-12-07")
        before, after = _outside(expected, name)
        expected = before + render_block(table, f"python -m bench {name}", "abc1234", "2026-12-07") + after
        assert doc.read_text(encoding="utf-8") == expected
    blocks = read_blocks(expected)
    assert {name: blocks[name].body for name in bodies} == bodies
    assert all(f"\n{MODULES[name].HEADING}\n" in expected for name in MODULES)  # the headings of new blocks
