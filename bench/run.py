"""The performance scenarios (ingest, incremental, recall, latency, langchain): run them, print
their tables, and with --publish write each into its block of docs/benchmarks.md (and the
latency plot beside it), leaving the rest of the file as it is.

    python -m bench perf                          # all five, full sizes (hours on 2 cores: 1M-chunk indexes)
    python -m bench perf --quick                  # tiny sizes, seconds to minutes (the smoke test runs this)
    python -m bench latency --sizes 10000,100000  # one scenario (= python -m bench perf --only latency)
    python -m bench perf --render-only --publish  # the tables again from the saved results

Results are merged into $QA_BENCH_CACHE/results.json as each scenario finishes, each with the
command, commit, day and machine it was measured with, so scenarios can be run one at a time
and a table published again from what was measured (`--render-only`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench.common import CACHE, Machine, configured_model, scifact_queries
from bench.publish import add_publish_arguments, command, current_commit, publish
from bench.report import SECTIONS, plot, tables

PERF = tuple(SECTIONS)  # ingest, incremental, recall, latency, langchain


class Run:
    """One invocation: its arguments, the results it adds to, and each scenario's provenance."""

    def __init__(self, args: argparse.Namespace, results: dict, argv: list[str]) -> None:
        self.args, self.results, self.argv = args, results, argv
        self.sizes = [int(s) for s in args.sizes.split(",")]
        self.client_counts = [int(c) for c in str(args.clients).split(",")]
        self.article_sizes = [int(s) for s in args.articles.split(",")]
        try:
            self.commit: str | None = current_commit()
        except RuntimeError:
            self.commit = None  # not a checkout: the figures are printed, not published

    def save(self) -> None:
        self.results["machine"] = asdict(Machine.describe())
        results_path(self.args).write_text(json.dumps(self.results, indent=2))

    def measured(self, scenario: str) -> None:
        """Record how `scenario`'s figures were just measured, and save."""
        self.results.setdefault("measured", {})[scenario] = {
            "command": command(scenario, self.argv), "commit": self.commit,
            "day": datetime.now(timezone.utc).date().isoformat(), "machine": asdict(Machine.describe()),
        }
        self.save()

    def record_latency(self, row) -> None:
        """Add one HTTP latency run, replacing an earlier one of the same system, size and clients."""
        print("latency", asdict(row), flush=True)
        key = (row.system, row.chunks, row.clients)
        latency = self.results.setdefault("latency", [])
        self.results["latency"] = [x for x in latency if (x["system"], x["chunks"], x["clients"]) != key]
        self.results["latency"].append(asdict(row))


def run_ingest(run: Run, encoder) -> None:
    from bench.ingest_throughput import measure

    r = measure(encoder, run.args.docs, run.args.repeats)
    print("ingest", asdict(r), flush=True)
    run.results["ingest"] = asdict(r)
    run.measured("ingest")


def run_incremental(run: Run, encoder) -> None:
    from bench.incremental import add_one

    run.results["incremental"] = []
    for n in run.article_sizes:
        r = add_one(n, encoder, run.args.repeats)
        print("incremental", asdict(r), flush=True)
        run.results["incremental"].append(asdict(r))
        run.save()
    run.measured("incremental")


def run_recall_and_latency(run: Run, queries: list[str], only: set[str]) -> None:
    from bench.query_latency import ann_recall, encode_queries, ours_http, query_embedding_ms

    qv = encode_queries(queries)
    results = run.results
    results.setdefault("recall", [])
    results.setdefault("latency", [])
    for size in run.sizes:
        if "recall" in only:
            r = ann_recall(size, qv)
            print("recall", asdict(r), flush=True)
            results["recall"] = [x for x in results["recall"] if x["chunks"] != r.chunks] + [asdict(r)]
        if "latency" in only:
            for clients in run.client_counts:
                run.record_latency(ours_http(size, queries, run.args.requests, clients))
        run.save()
    if "recall" in only:
        run.measured("recall")
    if "latency" in only:
        results["query_embedding_ms"] = {
            f"{backend}_{threads}": query_embedding_ms(queries, threads, backend)
            for backend in ("onnx", "torch") for threads in (1, 2)
        }
        run.measured("latency")


def run_langchain(run: Run, queries: list[str]) -> None:
    from bench import langchain_baseline as lc

    args, results = run.args, run.results
    embedder = lc.embeddings()
    r = lc.ingest(args.docs, embedder)
    print("langchain ingest", asdict(r), flush=True)
    results["langchain_ingest"] = asdict(r)
    run.save()
    rebuild = []
    for n in run.article_sizes:
        chunks = n * 3
        index_s = lc.rebuild_index_seconds(chunks, embedder) if chunks <= args.lc_rebuild_max else None
        rebuild.append({"articles": n, "chunks": chunks, "index_s": None if index_s is None else round(index_s, 2),
                        "embed_s_projected": round(chunks / r.chunks_per_s, 1)})
        print("langchain rebuild", rebuild[-1], flush=True)
    results["langchain_rebuild"] = rebuild
    run.save()
    for size in run.sizes:
        for clients in run.client_counts:
            run.record_latency(lc.http(size, queries, args.requests, clients))
        run.save()
    run.measured("langchain")


def run_all(run: Run, only: set[str]) -> None:
    from index.encoder import Encoder

    queries = scifact_queries()
    encoder = Encoder(configured_model())
    if "ingest" in only:
        run_ingest(run, encoder)
    if "incremental" in only:
        run_incremental(run, encoder)
    if "recall" in only or "latency" in only:
        run_recall_and_latency(run, queries, only)
    if "langchain" in only:
        run_langchain(run, queries)


def results_path(args: argparse.Namespace) -> Path:
    return Path(args.results) if args.results else CACHE / ("results-quick.json" if args.quick else "results.json")


def publish_tables(doc: Path, results: dict, scenarios: list[str]) -> None:
    """Each scenario's table into its block of `doc`, with the provenance recorded when it was
    measured; the latency plot beside `doc`."""
    png = doc.with_name(doc.stem + "-latency.png")
    has_plot = "latency" in scenarios and plot(results, png)
    for scenario, table in tables(results, scenarios, png.name if has_plot else None).items():
        measured = results.get("measured", {}).get(scenario)
        if not measured:
            print(f"not published: {scenario}'s results carry no provenance (measured before it was recorded); "
                  f"run `python -m bench {scenario}` again", file=sys.stderr)
            continue
        publish(doc, [table], measured["command"], commit=measured["commit"], day=measured["day"])
        print(f"published {table.name} into {doc}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks run")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(PERF)}")
    parser.add_argument("--sizes", help="index sizes in chunks for latency and recall")
    parser.add_argument("--articles", help="index sizes in articles for incremental add")
    parser.add_argument("--docs", type=int, help="SciFact abstracts for ingest throughput")
    parser.add_argument("--requests", type=int, help="requests per latency run")
    parser.add_argument("--clients", default="1,4", help="concurrent clients per latency run, comma-separated")
    parser.add_argument("--repeats", type=int, help="repetitions (medians are reported)")
    parser.add_argument("--lc-rebuild-max", type=int, default=300_000, help="largest LangChain rebuild actually timed (chunks)")
    parser.add_argument("--results", help="results JSON (default under $QA_BENCH_CACHE)")
    parser.add_argument("--render-only", action="store_true", help="measure nothing: the tables from the saved results")
    add_publish_arguments(parser, "perf")
    args = parser.parse_args(argv)
    unknown = set((args.only or "").split(",")) - set(PERF) - {""}
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {','.join(PERF)}")
    quick = {"sizes": "300,900", "articles": "20,60", "docs": 8, "requests": 20, "repeats": 1}
    full = {"sizes": "10000,100000,1000000", "articles": "1000,10000,100000", "docs": 400, "requests": 1000, "repeats": 3}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    only = [s for s in PERF if s in args.only.split(",")] if args.only else list(PERF)
    path = results_path(args)
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.render_only:
        results.setdefault("started", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        path.parent.mkdir(parents=True, exist_ok=True)
        run_all(Run(args, results, argv), set(only))
    print("\n\n".join(table.body for table in tables(results, only).values()))
    if args.publish:
        publish_tables(args.doc, results, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
