"""Where a serving process's resident memory goes: measured after each stage of what `qa-serve`
does at start (imports, the model, the question path, the index) and after answering
questions, with the largest mappings at the end (file-backed ones by file, anonymous ones
together).

    python -m bench serving-memory --index IDX [--queries 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from bench.common import rss_mb, scifact_queries


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    stages: list[dict] = []
    _stage(stages, "python")
    from index.dense import set_query_threads
    from index.encoder import Encoder
    from index.search import Searcher
    from index.store import load_index
    from qa_service.settings import ServiceSettings

    settings = ServiceSettings(index_dir=args.index)
    set_query_threads(settings.query_threads)
    _stage(stages, "imports (faiss, onnxruntime, ...)")
    encoder = Encoder.for_settings(settings, threads=settings.query_threads)
    encoder.encode_query("warm-up")
    _stage(stages, "question path (ONNX Runtime)")
    index = load_index(args.index, embedding=encoder.spec)
    searcher = Searcher(index, encoder, settings)
    _stage(stages, f"index ({index.live_chunks:,} chunks)")
    for question in scifact_queries(args.queries):
        searcher.search(question)
    _stage(stages, f"after {args.queries} questions")
    print(f"torch loaded: {'torch' in sys.modules}")
    mappings = largest_mappings()
    for mapping in mappings:
        print(f"  {mapping['rss_mb']:8.1f} MB  {mapping['mapping']}")
    if args.json:
        args.json.write_text(json.dumps({"stages": stages, "largest_mappings": mappings}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
