"""Scenario 2: adding one article to an index of 1k, 10k and 100k articles with `run_ingest`
(what qa-ingest and the admin routes run), split into embedding time and everything else.

The existing articles are synthetic (bench/common.py: three ~550-character passages of real
SciFact sentences, vectors mixed from real embeddings) and published once with the real store
code, with a `.jsonl` article file qa-ingest reads back as unchanged. The added article is a
real one (a sample-corpus article, made unique per repetition so the vector cache cannot
answer for it) and is embedded by the real model. After the repetitions the added articles are
deleted and one more run removes them (also timed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import CACHE, PASSAGES_PER_ARTICLE, Timer, build_synthetic_index, median

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ARTICLE = ROOT / "data" / "articles" / "001_af1d1ee797eafa4c.txt"


class TimedEncoder:
    """The real encoder, counting the seconds spent in `encode`."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.seconds = 0.0

    def encode(self, texts: list[str]):
        with Timer() as t:
            vectors = self._encoder.encode(texts)
        self.seconds += t.seconds
        return vectors

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)


@dataclass
class AddResult:
    articles: int
    chunks: int
    dense: str
    chunks_embedded: int
    total_s: float
    embedding_s: float
    other_s: float
    remove_s: float
    runs: int
    bytes_written: int = 0  # median per add: the new segment and version (cache excluded)
    stages_s: dict | None = None  # median seconds per stage of an add (report.timings)
    remove_bytes_written: int = 0


def base_index(n_articles: int) -> tuple[Path, Path, dict]:
    directory = CACHE / f"incremental-{n_articles}"
    info_path = directory / "bench-info.json"
    if not info_path.exists():
        shutil.rmtree(directory, ignore_errors=True)
        info = build_synthetic_index(directory / "index", n_articles * PASSAGES_PER_ARTICLE,
                                     articles_dir=directory / "articles")
        info_path.write_text(json.dumps(info))
    return directory / "index", directory / "articles", json.loads(info_path.read_text())


def add_one(n_articles: int, encoder, repeats: int = 3) -> AddResult:
    from index.settings import Settings
    from ingest.pipeline import run_ingest

    index_dir, articles_dir, info = base_index(n_articles)
    settings = Settings(index_dir=index_dir, keep_versions=1)
    for stale in articles_dir.glob("added-*.txt"):  # a previous run interrupted
        stale.unlink()
    timed = TimedEncoder(encoder)
    run_ingest(articles_dir, settings, timed, progress=False)  # back to the base state
    text = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    totals, embeds, embedded, chunks, written, stages = [], [], 0, 0, [], []
    for rep in range(repeats):
        stamp = f"{time.time_ns()}-{rep}"
        # Every paragraph made unique, so no chunk of the new article is in the vector cache.
        unique = "\n\n".join(f"{p.strip()} [{stamp}]" for p in text.split("\n\n") if p.strip())
        (articles_dir / f"added-{stamp}.txt").write_text(unique + "\n", encoding="utf-8")
        timed.seconds = 0.0
        report = run_ingest(articles_dir, settings, timed, progress=False)
        assert report.added == [f"added-{stamp}"], report.to_json()
        totals.append(report.seconds)
        embeds.append(timed.seconds)
        written.append(report.bytes_written)
        stages.append(report.timings)
        embedded, chunks = report.chunks_embedded, report.chunks
    for added in articles_dir.glob("added-*.txt"):
        added.unlink()
    remove = run_ingest(articles_dir, settings, timed, progress=False)
    other = [t - e for t, e in zip(totals, embeds)]
    return AddResult(articles=info["articles"], chunks=chunks, dense=info["dense"]["kind"], chunks_embedded=embedded,
                     total_s=round(median(totals), 3), embedding_s=round(median(embeds), 3),
                     other_s=round(median(other), 3), remove_s=round(remove.seconds, 3), runs=repeats,
                     bytes_written=int(median(written)), remove_bytes_written=remove.bytes_written,
                     stages_s={k: round(median([t.get(k, 0.0) for t in stages]), 3) for k in stages[-1]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", default="1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from index.encoder import Encoder

    encoder = Encoder()
    results = []
    for n in [int(x) for x in args.articles.split(",")]:
        result = add_one(n, encoder, args.repeats)
        print(json.dumps(asdict(result)), flush=True)
        results.append(asdict(result))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
