"""The scenarios `python -m bench` runs: each name, the module whose `main(argv)` runs it, the
document its tables are published into (with `--publish`, where it has one), and one line on
what it measures. Experiments (bench/experiments/) are not scenarios."""

from __future__ import annotations

from dataclasses import dataclass

BENCHMARKS = "docs/benchmarks.md"
QUALITY = "docs/quality.md"
RELIABILITY = "docs/reliability.md"


@dataclass(frozen=True)
class Scenario:
    module: str  # the dotted module whose main(argv: list[str] | None) -> int runs it
    doc: str  # the file its tables go to, relative to the repository root
    about: str  # one line
    args: tuple[str, ...] = ()  # given to main before the caller's arguments


def _perf(only: str, about: str) -> Scenario:
    return Scenario("bench.run", BENCHMARKS, about, ("--only", only))


SCENARIOS: dict[str, Scenario] = {
    "perf": Scenario("bench.run", BENCHMARKS, "the five performance scenarios below, one after the other"),
    "ingest": _perf("ingest", "ingest throughput on SciFact against the model's own encode"),
    "incremental": _perf("incremental", "adding and removing one article in an index of 1k to 100k articles"),
    "recall": _perf("recall", "recall@10 of the approximate dense index against exact search"),
    "latency": _perf("latency", "/ask latency, throughput and serving memory over HTTP, by index size"),
    "langchain": _perf("langchain", "the plain LangChain pipeline measured the same way, side by side"),
    "segments": Scenario("bench.segment_latency", BENCHMARKS,
                         "question latency after 1,000 single-article adds against a merged index"),
    "swap": Scenario("bench.swap_memory", BENCHMARKS, "serving memory and latency while a new version swaps in"),
    "replicas": Scenario("bench.replicas_throughput", BENCHMARKS, "one replica against two behind nginx"),
    "ray": Scenario("bench.ray_ingest", BENCHMARKS, "ingest on Ray against the in-process engine"),
    "search-cache": Scenario("bench.search_cache", BENCHMARKS,
                             "repeated questions with the search cache on and off, against the embedding floor"),
    "log-cost": Scenario("bench.question_log_cost", BENCHMARKS, "what the question log costs /ask"),
    "sync": Scenario("bench.sync_feed", BENCHMARKS, "qa-sync of a 1,000-item feed, first and unchanged"),
    "serving-memory": Scenario("bench.serving_memory", BENCHMARKS,
                               "where a serving process's resident memory goes, stage by stage"),
    "insights": Scenario("bench.insights_scale", RELIABILITY, "GET /admin/insights on a large question log"),
    "abuse": Scenario("bench.abuse", RELIABILITY, "memory and a normal reader's latency under a bounded abuse run"),
    "quality": Scenario("bench.quality", QUALITY, "SciFact, NFCorpus and SQuAD: BM25, dense, our hybrid, txtai"),
    "eval": Scenario("bench.eval_report", QUALITY,
                     "the sample's reported sets: hit@k, reliability by level, precision and coverage"),
    "models": Scenario("bench.model_check", QUALITY, "an embedding model's dense nDCG@10 against its published figure"),
    "compare-models": Scenario("bench.model_compare", QUALITY,
                               "embedding models side by side on the sample: reported sets, ingest, /ask, memory"),
    "judged": Scenario("bench.judged_calibration", QUALITY,
                       "readers' questions judged, fitted by qa-calibrate, scored on the report half"),
    "testset": Scenario("bench.testset", QUALITY, "qa-testset on the sample: time and each filter's funnel"),
    "composed": Scenario("bench.composed", QUALITY, "composed answers: sentences kept, dropped and why, and speed"),
    "stream": Scenario("bench.stream_latency", QUALITY, "time to the first streamed word and the checked answer"),
    "followups": Scenario("bench.followup_rewrite", QUALITY,
                          "follow-ups searched as asked against rewritten by the model"),
}
