"""Scenario 1: ingest throughput on real text, next to the model's own `encode` throughput on
the same chunks in the same run. The ratio is the figure.

Real text: the first N SciFact abstracts (title + text) written as one `.jsonl` article file.
Ingest is `run_ingest` (what qa-ingest runs) into a fresh index with an empty vector cache,
timed end to end (load, clean, segment, chunk, embed, publish; the model is loaded once
beforehand, as it is for the encode run). Encode is `SentenceTransformer.encode` on exactly the
chunk texts that ingest produced, batch size 64. The two alternate, and the median is taken.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import Timer, configured_model, median, scifact_docs


@dataclass
class IngestThroughput:
    documents: int
    chunks: int
    ingest_chunks_per_s: float
    encode_chunks_per_s: float
    ratio: float
    ingest_runs_s: list[float]
    encode_runs_s: list[float]


def write_corpus(folder: Path, n_docs: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "scifact.jsonl").open("w", encoding="utf-8") as handle:
        for doc in scifact_docs()[:n_docs]:
            handle.write(json.dumps({"id": f"scifact-{doc['_id']}", "title": doc["title"],
                                     "text": f"{doc['title']}\n\n{doc['text']}"}) + "\n")


def measure(encoder, n_docs: int = 400, repeats: int = 2) -> IngestThroughput:
    from index.settings import Settings
    from index.store import load_index
    from ingest.pipeline import run_ingest

    work = Path(tempfile.mkdtemp(prefix="qa-bench-ingest-"))
    try:
        write_corpus(work / "articles", n_docs)
        ingest_s, encode_s, chunks, texts = [], [], 0, None
        for rep in range(repeats):
            index_dir = work / f"index-{rep}"  # fresh index and vector cache each time
            report = run_ingest(work / "articles", Settings(index_dir=index_dir), encoder, progress=False)
            ingest_s.append(report.seconds)
            chunks = report.chunks_embedded
            if texts is None:
                texts = [c.text for c in load_index(index_dir).chunks]
            with Timer() as t:
                encoder.encode(texts)
            encode_s.append(t.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ingest_rate = chunks / median(ingest_s)
    encode_rate = len(texts) / median(encode_s)
    return IngestThroughput(documents=n_docs, chunks=chunks, ingest_chunks_per_s=round(ingest_rate, 1),
                            encode_chunks_per_s=round(encode_rate, 1), ratio=round(ingest_rate / encode_rate, 3),
                            ingest_runs_s=[round(x, 2) for x in ingest_s], encode_runs_s=[round(x, 2) for x in encode_s])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    from index.encoder import Encoder

    print(json.dumps(asdict(measure(Encoder(configured_model()), args.docs, args.repeats))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
