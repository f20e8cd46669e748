"""Run every performance benchmark and write docs/benchmarks.md and docs/benchmarks-latency.png.

    .venv/bin/python -m bench.run                # everything, full sizes (hours on 2 cores: builds 1M-chunk indexes)
    .venv/bin/python -m bench.run --quick        # tiny sizes, seconds to minutes (the smoke test runs this)
    .venv/bin/python -m bench.run --only latency,recall --sizes 10000,100000

Results are merged into $QA_BENCH_CACHE/results.json as each scenario finishes, so scenarios can
be run one at a time (`--only`) and the report rendered from what has run (`--render-only`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.common import CACHE, Machine, configured_model, scifact_queries

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("ingest", "incremental", "recall", "latency", "langchain")


def run(args: argparse.Namespace, results: dict) -> None:
    from index.encoder import Encoder

    sizes = [int(s) for s in args.sizes.split(",")]
    client_counts = [int(c) for c in str(args.clients).split(",")]
    article_sizes = [int(s) for s in args.articles.split(",")]
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    queries = scifact_queries()
    encoder = Encoder(configured_model())

    def save() -> None:
        results["machine"] = asdict(Machine.describe())
        results_path(args).write_text(json.dumps(results, indent=2))

    if "ingest" in only:
        from bench.ingest_throughput import measure

        r = measure(encoder, args.docs, args.repeats)
        print("ingest", asdict(r), flush=True)
        results["ingest"] = asdict(r)
        save()
    if "incremental" in only:
        from bench.incremental import add_one

        results["incremental"] = []
        for n in article_sizes:
            r = add_one(n, encoder, args.repeats)
            print("incremental", asdict(r), flush=True)
            results["incremental"].append(asdict(r))
            save()
    if "recall" in only or "latency" in only:
        from bench.query_latency import ann_recall, encode_queries, ours_http, query_embedding_ms

        qv = encode_queries(queries)
        results.setdefault("recall", [])
        results.setdefault("latency", [])
        for size in sizes:
            if "recall" in only:
                r = ann_recall(size, qv)
                print("recall", asdict(r), flush=True)
                results["recall"] = [x for x in results["recall"] if x["chunks"] != r.chunks] + [asdict(r)]
            if "latency" in only:
                for clients in client_counts:
                    record_latency(results, ours_http(size, queries, args.requests, clients))
            save()
        if "latency" in only:
            results["query_embedding_ms"] = {
                f"{backend}_{threads}": query_embedding_ms(queries, threads, backend)
                for backend in ("onnx", "torch") for threads in (1, 2)
            }
            save()
    if "langchain" in only:
        from bench import langchain_baseline as lc

        embedder = lc.embeddings()
        r = lc.ingest(args.docs, embedder)
        print("langchain ingest", asdict(r), flush=True)
        results["langchain_ingest"] = asdict(r)
        save()
        rebuild = []
        for n in article_sizes:
            chunks = n * 3
            index_s = lc.rebuild_index_seconds(chunks, embedder) if chunks <= args.lc_rebuild_max else None
            rebuild.append({"articles": n, "chunks": chunks, "index_s": None if index_s is None else round(index_s, 2),
                            "embed_s_projected": round(chunks / r.chunks_per_s, 1)})
            print("langchain rebuild", rebuild[-1], flush=True)
        results["langchain_rebuild"] = rebuild
        save()
        for size in sizes:
            for clients in client_counts:
                record_latency(results, lc.http(size, queries, args.requests, clients))
            save()


def record_latency(results: dict, row) -> None:
    """Add one HTTP latency run, replacing an earlier one of the same system, size and clients."""
    print("latency", asdict(row), flush=True)
    key = (row.system, row.chunks, row.clients)
    results.setdefault("latency", [])
    results["latency"] = [x for x in results["latency"] if (x["system"], x["chunks"], x["clients"]) != key]
    results["latency"].append(asdict(row))


def results_path(args: argparse.Namespace) -> Path:
    return Path(args.results) if args.results else CACHE / ("results-quick.json" if args.quick else "results.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks run")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--sizes", help="index sizes in chunks for latency and recall")
    parser.add_argument("--articles", help="index sizes in articles for incremental add")
    parser.add_argument("--docs", type=int, help="SciFact abstracts for ingest throughput")
    parser.add_argument("--requests", type=int, help="requests per latency run")
    parser.add_argument("--clients", default="1,4", help="concurrent clients per latency run, comma-separated")
    parser.add_argument("--repeats", type=int, help="repetitions (medians are reported)")
    parser.add_argument("--lc-rebuild-max", type=int, default=300_000, help="largest LangChain rebuild actually timed (chunks)")
    parser.add_argument("--results", help="results JSON (default under $QA_BENCH_CACHE)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    quick = {"sizes": "300,900", "articles": "20,60", "docs": 8, "requests": 20, "repeats": 1}
    full = {"sizes": "10000,100000,1000000", "articles": "1000,10000,100000", "docs": 400, "requests": 1000, "repeats": 3}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    path = results_path(args)
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.render_only:
        results.setdefault("started", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        path.parent.mkdir(parents=True, exist_ok=True)
        run(args, results)
    from bench.report import render

    render(results, args.out, quick=args.quick)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
