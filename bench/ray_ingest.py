"""The Ray engine against the in-process one on the same 300 SciFact abstracts, side by side
in one run: `run_ingest` into a fresh index with an empty vector cache each time, alternated.
Ray runs on this machine (a local cluster started once, before the timed runs, as a cluster
one joins is already up); its start and the encoder actors' model loads (once per cluster,
as the default engine's model is loaded once) are reported apart.

    python -m bench ray [--docs 300] [--repeats 2] [--publish]

The figures are printed as JSON, then as a table; with --publish the table is written into its
block of docs/benchmarks.md (`ray`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import median
from bench.ingest_throughput import write_corpus
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish

HEADING = "## Ingest on Ray"  # the block's, when it is new
STAGES = ("load", "chunk", "embed")  # the stages the table gives, median seconds of the runs
TARGET = 0.85  # Ray / default chunks per second


@dataclass
class RayIngest:
    documents: int
    chunks: int
    local_chunks_per_s: float
    ray_chunks_per_s: float
    ratio: float  # ray / local (target >= 0.85)
    local_runs_s: list[float]
    ray_runs_s: list[float]
    ray_start_s: float
    encoders_ready_s: float  # the encoder actors' model loads, once per cluster
    encoders: int  # encoder actors
    ray_stages_s: dict  # median seconds per stage of the Ray runs
    local_stages_s: dict


def measure(n_docs: int = 300, repeats: int = 2) -> RayIngest:
    import ray

    from index.encoder import Encoder
    from index.settings import Settings
    from ingest.pipeline import run_ingest
    from ingest.ray_engine import RayOptions, cluster, encoder_actors

    encoder = Encoder()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-ray-"))
    runs: dict[str, list] = {"local": [], "ray": []}
    try:
        write_corpus(work / "articles", n_docs)
        started = time.perf_counter()
        with cluster(RayOptions()):
            ray_start = time.perf_counter() - started
            # The encoder actors load the model once per cluster, as the default engine's
            # encoder is loaded once above: both are ready before the timed runs.
            started = time.perf_counter()
            actors = encoder_actors(RayOptions(), Settings(), batches=10**6)
            ray.get([actor.encode.remote(0, ["warm up"]) for actor in actors])
            encoders_ready, n_encoders = time.perf_counter() - started, len(actors)
            for rep in range(repeats):
                for engine in ("local", "ray"):
                    report = run_ingest(work / "articles", Settings(index_dir=work / f"{engine}-{rep}"), encoder,
                                        progress=False, ray=RayOptions() if engine == "ray" else None)
                    runs[engine].append(report)
            assert ray.is_initialized()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    chunks = runs["local"][0].chunks_embedded
    rate = {engine: chunks / median([r.seconds for r in reports]) for engine, reports in runs.items()}

    def stages(reports: list) -> dict:
        return {k: round(median([r.timings.get(k, 0.0) for r in reports]), 2) for k in reports[-1].timings}

    return RayIngest(
        documents=n_docs, chunks=chunks, local_chunks_per_s=round(rate["local"], 1),
        ray_chunks_per_s=round(rate["ray"], 1), ratio=round(rate["ray"] / rate["local"], 3),
        local_runs_s=[round(r.seconds, 2) for r in runs["local"]], ray_runs_s=[round(r.seconds, 2) for r in runs["ray"]],
        ray_start_s=round(ray_start, 2), encoders_ready_s=round(encoders_ready, 2), encoders=n_encoders,
        ray_stages_s=stages(runs["ray"]), local_stages_s=stages(runs["local"]),
    )


def _stages(stages: dict) -> str:
    return " / ".join("–" if stages.get(k) is None else f"{stages[k]:.2f}" for k in STAGES)


def table(result: RayIngest) -> str:
    """The run as the `ray` block of docs/benchmarks.md."""
    runs = len(result.local_runs_s)
    cells = [f"{result.documents:,} ({runs} run{'s' if runs != 1 else ''} each)", f"{result.chunks:,}",
             f"{result.local_chunks_per_s:.1f}", f"{result.ray_chunks_per_s:.1f}", f"{result.ratio:.3f}",
             _stages(result.ray_stages_s), _stages(result.local_stages_s)]
    verdict = "met" if result.ratio >= TARGET else "missed"
    headers = ["documents", "chunks", "default engine chunks/s", "Ray chunks/s", "Ray / default (target ≥ 0.85)",
               f"Ray: {' / '.join(STAGES)} s", f"default: {' / '.join(STAGES)} s"]
    return (markdown_table(headers, [cells]) + "\n\n"
            "SciFact abstracts, `run_ingest` into a fresh index with an empty vector cache each run, the "
            f"engines alternated; medians. A local Ray on this machine ({result.encoders} encoder actors); once "
            f"per cluster, not in the runs: starting Ray {result.ray_start_s} s, the actors' model loads "
            f"{result.encoders_ready_s} s. Target: Ray at least {TARGET} of the default engine's rate ({verdict}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    add_publish_arguments(parser, "ray")
    args = parser.parse_args(argv)
    result = measure(args.docs, args.repeats)
    print(json.dumps(asdict(result)))
    print_and_publish(args, "ray", argv, [Table("ray", table(result), HEADING)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
