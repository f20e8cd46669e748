"""Scenario 2: adding one article to an index of 1k to 1M articles, and removing it again,
split into embedding time and everything else. Two ways, both what qa-ingest and the admin
routes run:

- named (`run_update`: `qa-ingest FILE`, `qa-ingest --remove ID`, POST and DELETE /articles):
  the update names its article, and nothing else of the folder is read;
- folder (`run_ingest`: `qa-ingest ARTICLES_DIR`, POST /admin/reindex): the whole folder is
  read and diffed against the index to find the change (only up to `--folder-up-to` articles:
  at a million it is a minute of reading per run).

The existing articles are synthetic (bench/common.py: three ~550-character passages of real
SciFact sentences, vectors mixed from real embeddings) and published once with the real store
code, with `.jsonl` article files qa-ingest reads back as unchanged. The added article is a
real one (a sample-corpus article, made unique per repetition so the vector cache cannot
answer for it) and is embedded by the real model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    CACHE,
    PASSAGES_PER_ARTICLE,
    Timer,
    build_synthetic_index,
    configured_model,
    median,
    model_tag,
    run_sizes,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ARTICLE = ROOT / "data" / "articles" / "001_af1d1ee797eafa4c.txt"
ADDED = "added-"


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
    runs: int
    # Named updates: medians per add and per removal.
    named_total_s: float
    named_embedding_s: float
    named_other_s: float  # everything besides embedding
    named_remove_s: float
    named_bytes_written: int  # the new segment and version (cache excluded)
    named_remove_bytes_written: int
    named_stages_s: dict  # median seconds per stage of an add (report.timings)
    # Folder runs (None above --folder-up-to).
    total_s: float | None = None
    embedding_s: float | None = None
    other_s: float | None = None
    remove_s: float | None = None
    bytes_written: int | None = None
    stages_s: dict | None = None
    remove_bytes_written: int | None = None


def base_index(n_articles: int) -> tuple[Path, Path, dict]:
    directory = CACHE / f"incremental-{n_articles}{model_tag()}"
    info_path = directory / "bench-info.json"
    if not info_path.exists():
        shutil.rmtree(directory, ignore_errors=True)
        info = build_synthetic_index(directory / "index", n_articles * PASSAGES_PER_ARTICLE,
                                     articles_dir=directory / "articles")
        info_path.write_text(json.dumps(info))
    return directory / "index", directory / "articles", json.loads(info_path.read_text())


def unique_article(articles_dir: Path, rep: int) -> tuple[str, Path]:
    """A new article file: the sample article with every paragraph made unique, so no chunk
    of it is in the vector cache."""
    stamp = f"{time.time_ns()}-{rep}"
    text = SAMPLE_ARTICLE.read_text(encoding="utf-8")
    unique = "\n\n".join(f"{p.strip()} [{stamp}]" for p in text.split("\n\n") if p.strip())
    path = articles_dir / f"{ADDED}{stamp}.txt"
    path.write_text(unique + "\n", encoding="utf-8")
    return path.stem, path


def back_to_base(index_dir: Path, articles_dir: Path, settings, encoder) -> None:
    """Remove what an interrupted earlier run added (files and index entries)."""
    from index import store
    from ingest.pipeline import run_update

    for stale in articles_dir.glob(f"{ADDED}*.txt"):
        stale.unlink()
    base = store.open_for_update(index_dir)
    leftovers = [a for a in base.hashes if a.startswith(ADDED)] if base else []
    if leftovers:
        run_update([], settings, encoder, remove=leftovers, progress=False)


def add_one(n_articles: int, encoder, repeats: int = 3, folder_up_to: int = 100_000) -> AddResult:
    from index.settings import Settings
    from ingest.pipeline import run_ingest, run_update

    index_dir, articles_dir, info = base_index(n_articles)
    settings = Settings(index_dir=index_dir, keep_versions=1)
    timed = TimedEncoder(encoder)
    back_to_base(index_dir, articles_dir, settings, timed)

    def measure(add, remove) -> dict:
        adds, embeds, written, stages, removes, removed_written, embedded, chunks = [], [], [], [], [], [], 0, 0
        for rep in range(repeats):
            article_id, path = unique_article(articles_dir, rep)
            timed.seconds = 0.0
            report = add(path)
            assert report.added == [article_id], report.to_json()
            adds.append(report.seconds)
            embeds.append(timed.seconds)
            written.append(report.bytes_written)
            stages.append(report.timings)
            embedded, chunks = report.chunks_embedded, report.chunks
            report = remove(article_id, path)
            assert report.removed == [article_id], report.to_json()
            removes.append(report.seconds)
            removed_written.append(report.bytes_written)
        return {
            "total_s": round(median(adds), 3), "embedding_s": round(median(embeds), 3),
            "other_s": round(median([t - e for t, e in zip(adds, embeds)]), 3),
            "remove_s": round(median(removes), 3), "bytes_written": int(median(written)),
            "remove_bytes_written": int(median(removed_written)),
            "stages_s": {k: round(median([t.get(k, 0.0) for t in stages]), 3) for k in stages[-1]},
            "chunks_embedded": embedded, "chunks": chunks,
        }

    def named_remove(article_id: str, path: Path):
        path.unlink()
        return run_update([], settings, timed, remove=[article_id], progress=False)

    def folder_remove(_article_id: str, path: Path):
        path.unlink()
        return run_ingest(articles_dir, settings, timed, progress=False)

    named = measure(lambda path: run_update([path], settings, timed, progress=False), named_remove)
    folder = None
    if n_articles <= folder_up_to:
        folder = measure(lambda _path: run_ingest(articles_dir, settings, timed, progress=False), folder_remove)
    return AddResult(
        articles=info["articles"], chunks=named["chunks"], dense=info["dense"]["kind"],
        chunks_embedded=named["chunks_embedded"], runs=repeats,
        **{f"named_{k}": v for k, v in named.items() if k not in ("chunks", "chunks_embedded")},
        **({k: v for k, v in folder.items() if k not in ("chunks", "chunks_embedded")} if folder else {}),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", default="1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder-up-to", type=int, default=100_000,
                        help="also time folder runs at sizes up to this many articles")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from index.encoder import Encoder

    encoder = Encoder(configured_model())
    return run_sizes(args.articles, lambda n: add_one(n, encoder, args.repeats, args.folder_up_to), args.json)


if __name__ == "__main__":
    sys.exit(main())
