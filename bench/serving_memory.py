"""Where a serving process's resident memory goes: measured after each stage of what `qa-serve`
does at start (imports, the model, the question path, the index) and after answering
questions, with the largest mappings at the end (file-backed ones by file, anonymous ones
together).

    python -m bench serving-memory --index IDX [--queries 300] [--json OUT] [--publish]

Each stage is printed as it is measured, then the mappings, then a table of the stages; with
--publish the table is written into its block of docs/benchmarks.md (`serving-memory`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from bench.common import rss_mb, scifact_queries
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish

HEADING = "## Serving memory"  # the block's, when it is new
TARGET_MB = 1536  # 1.5 GB at 1,000,000 chunks, after the questions


def _stage(stages: list[dict], name: str) -> None:
    memory = rss_mb(os.getpid())
    stages.append({"stage": name, "rss_mb": round(memory["VmRSS"], 1), "anon_mb": round(memory["RssAnon"], 1),
                   "file_mb": round(memory["RssFile"], 1)})
    print(f"{name:<32} RSS {memory['VmRSS']:8.1f} MB  anon {memory['RssAnon']:8.1f}  file {memory['RssFile']:8.1f}",
          flush=True)


def largest_mappings(top: int = 12) -> list[dict]:
    """Resident MB per mapped file (anonymous mappings summed as one), largest first."""
    resident: dict[str, float] = defaultdict(float)
    name = "[anonymous]"
    with open("/proc/self/smaps", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                path = fields[5] if len(fields) > 5 else ""
                name = path if path.startswith("/") else "[anonymous]"
            elif fields[0] == "Rss:":
                resident[name] += int(fields[1]) / 1024
    ranked = sorted(resident.items(), key=lambda item: -item[1])[:top]
    return [{"mapping": path, "rss_mb": round(mb, 1)} for path, mb in ranked]


def measure(index_dir: Path, queries: int) -> dict:
    """Each stage's memory (printed as it is measured), the index's chunks, whether torch came
    in, and the largest mappings at the end: the figures `table` renders (and --json writes)."""
    stages: list[dict] = []
    _stage(stages, "python")
    from index.dense import set_query_threads
    from index.encoder import Encoder
    from index.search import Searcher
    from index.store import load_index
    from qa_service.settings import ServiceSettings

    settings = ServiceSettings(index_dir=index_dir)
    set_query_threads(settings.query_threads)
    _stage(stages, "imports (faiss, onnxruntime, ...)")
    encoder = Encoder.for_settings(settings, threads=settings.query_threads)
    encoder.encode_query("warm-up")
    _stage(stages, "question path (ONNX Runtime)")
    index = load_index(index_dir, embedding=encoder.spec)
    searcher = Searcher(index, encoder, settings)
    _stage(stages, f"index ({index.live_chunks:,} chunks)")
    questions = scifact_queries(queries)
    for question in questions:
        searcher.search(question)
    _stage(stages, f"after {queries} questions")
    return {"stages": stages, "chunks": index.live_chunks, "questions": len(questions),
            "torch_loaded": "torch" in sys.modules, "largest_mappings": largest_mappings()}


def table(profile: dict) -> str:
    """The profile as the `serving-memory` block of docs/benchmarks.md: a row per stage."""
    rows = [[s["stage"], f"{s['rss_mb']:,.1f}", f"{s['anon_mb']:,.1f}"] for s in profile["stages"]]
    final = profile["stages"][-1]["rss_mb"]
    largest = ", ".join(f"{Path(m['mapping']).name or m['mapping']} {m['rss_mb']:,.1f} MB"
                        for m in profile["largest_mappings"][:3])
    note = (f"Resident memory from /proc after each stage, in one process; {profile['questions']} SciFact claims "
            f"searched. Torch loaded: {'yes' if profile['torch_loaded'] else 'no'}. Largest resident mappings at "
            f"the end: {largest}.")
    if profile["chunks"] >= 1_000_000:
        verdict = "met" if final <= TARGET_MB else "missed"
        note += f" Target: at most 1.5 GB ({TARGET_MB:,} MB) at 1M chunks ({verdict})."
    return markdown_table(["stage", "RSS MB", "anonymous MB"], rows) + "\n\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path)
    add_publish_arguments(parser, "serving-memory")
    args = parser.parse_args(argv)
    profile = measure(args.index, args.queries)
    print(f"torch loaded: {profile['torch_loaded']}")
    for mapping in profile["largest_mappings"]:
        print(f"  {mapping['rss_mb']:8.1f} MB  {mapping['mapping']}")
    if args.json:
        args.json.write_text(json.dumps(profile, indent=1))
    print_and_publish(args, "serving-memory", argv, [Table("serving-memory", table(profile), HEADING)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
