"""Throughput of one replica against two behind nginx (`scripts/serve-replicas.sh`), each
replica pinned to a core of its own (QA_REPLICA_CPUS), on the synthetic 100,000-article index
of bench/incremental.py. The load comes from this process (client threads sending SciFact
claims to nginx), on the same machine: with 2 cores, the load generator and nginx share them
with the replicas, so this measures what the machine allows, not what separate machines give.

    python -m bench replicas [--articles 100000] [--clients 4] [--requests 1000] [--json OUT] [--publish]

Each run is printed as a JSON line, then all as a table; with --publish the table is written
into its block of docs/benchmarks.md (`replicas`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import percentile, scifact_queries
from bench.incremental import ROOT, base_index
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from bench.query_latency import load_test, wait_ready

HEADING = "## Replicas"  # the block's, when it is new
TARGET = 1.7  # two replicas against one, questions per second


@dataclass
class ReplicaThroughput:
    replicas: int
    cpus: str  # the cores the replicas are pinned to, space-separated (QA_REPLICA_CPUS)
    articles: int  # in the synthetic index
    clients: int
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def measure(replicas: int, cpus: str, clients: int, requests: int, n_articles: int, port: int) -> ReplicaThroughput:
    index_dir, articles_dir, info = base_index(n_articles)
    env = {**os.environ, "QA_PORT": str(port), "QA_INDEX_DIR": str(index_dir), "QA_ARTICLES_DIR": str(articles_dir),
           "QA_ASK_RATE_PER_MINUTE": "0", "HF_HUB_OFFLINE": "1", "QA_REPLICA_CPUS": cpus}
    script = subprocess.Popen(["bash", str(ROOT / "scripts" / "serve-replicas.sh"), str(replicas)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for i in range(1, replicas + 1):
            wait_ready(f"http://127.0.0.1:{port + i}/readyz", script)
        base = f"http://127.0.0.1:{port}"
        queries = scifact_queries(300)
        load_test(base, queries[::-1], 50, clients)  # warm-up
        latencies, errors, wall = load_test(base, queries, requests, clients)
    finally:
        os.killpg(script.pid, signal.SIGTERM)
        script.wait(timeout=60)
    return ReplicaThroughput(replicas=replicas, cpus=cpus, articles=info["articles"], clients=clients,
                             requests=requests, errors=errors, requests_per_s=round(requests / wall, 1),
                             p50_ms=round(percentile(latencies, 50), 2), p99_ms=round(percentile(latencies, 99), 2))


def speedups(results: list[ReplicaThroughput]) -> list[float]:
    """Each two-replica run's questions per second over the one-replica run before it."""
    out, one = [], None
    for r in results:
        if r.replicas == 1:
            one = r
        elif r.replicas == 2 and one is not None:
            out.append(r.requests_per_s / one.requests_per_s)
    return out


def table(results: list[ReplicaThroughput]) -> str:
    """The runs in the order made, as the `replicas` block of docs/benchmarks.md."""
    rows = [[r.replicas, ", ".join(r.cpus.split()), r.requests_per_s, r.p50_ms, r.p99_ms, r.errors] for r in results]
    first = results[0]
    ratios = speedups(results)
    verdict = ("met" if min(ratios) >= TARGET else "missed") if ratios else "no pair of runs"
    said = " and ".join(f"{ratio:.2f}×" for ratio in ratios) or "–"
    return (markdown_table(["replicas", "CPUs", "questions/s", "p50 ms", "p99 ms", "errors"], rows)
            + f"\n\n`scripts/serve-replicas.sh` on the synthetic {first.articles:,}-article index, "
            f"each replica pinned to a core, {first.clients} clients through nginx on the same machine, "
            f"{first.requests:,} questions a run after 50 to warm up: two replicas answer {said} as many questions "
            f"as one (target ≥ {TARGET}×, {verdict}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--port", type=int, default=18400)
    parser.add_argument("--json", type=Path)
    add_publish_arguments(parser, "replicas")
    args = parser.parse_args(argv)
    results = []
    for replicas, cpus in ((1, "0"), (2, "0 1"), (1, "0"), (2, "0 1")):  # alternated, twice
        results.append(measure(replicas, cpus, args.clients, args.requests, args.articles, args.port))
        print(json.dumps(asdict(results[-1])), flush=True)
        time.sleep(2)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print_and_publish(args, "replicas", argv, [Table("replicas", table(results), HEADING)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
