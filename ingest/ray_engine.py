"""The Ray Data engine of qa-ingest (`--engine ray`, the `distributed` extra).

Reading files, and cleaning, segmenting and chunking articles, run as Ray Data tasks;
embedding runs in an actor pool of encoders (one model load per actor, one GPU each when the
cluster has GPUs). The driver keeps what has to be in one place: the diff against the served
version, the vector cache (only texts it has not seen are sent out) and the publish, so the
result is the same version the in-process engine writes. Without an address a local Ray is
started for the run; with one (`ray://…` or `host:port`) the driver joins that cluster.

Rows carry pickled records: Ray Data moves them as bytes, and the records stay the
dataclasses the rest of the pipeline uses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.records import ArticleRecord, Chunk
from index.settings import Settings
from ingest.embed import BatchEncoder
from ingest.load import LoadResult, article_files, merge_reads, read_file


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray for the run
    encoders: int | None = None  # encoder actors; default: one per GPU, else one per CPU


@contextlib.contextmanager
def cluster(options: RayOptions) -> Iterator[None]:
    """Ray initialised for the run (and shut down after it, if this run started it)."""
    import ray
    import ray.data

    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False)
    # qa-ingest reports its own progress; Ray Data's bars and logs would drown it.
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def load_folder(folder: Path, max_bytes: int) -> LoadResult:
    """As `ingest.load.load_folder`, the files read by Ray tasks."""
    import ray.data

    paths = article_files(folder)
    if not paths:
        return LoadResult()
    rows = (
        ray.data.from_items([{"number": i, "path": str(p)} for i, p in enumerate(paths)])
        .map_batches(_read_files, fn_kwargs={"max_bytes": max_bytes}, batch_size=_BATCH, batch_format="pandas")
        .take_all()
    )
    rows.sort(key=lambda row: row["number"])
    return merge_reads((Path(row["path"]), pickle.loads(row["items"])) for row in rows)


_BATCH = 32  # files or articles per Ray task: fewer, larger tasks cost less scheduling


def _read_files(batch, max_bytes: int):
    batch["items"] = [pickle.dumps(read_file(Path(path), max_bytes)) for path in batch["path"]]
    return batch


def chunk_articles(articles: list[ArticleRecord], settings: Settings) -> list[Chunk]:
    """Every article's chunks, in article order (as the in-process engine makes them)."""
    import ray.data

    rows = (
        ray.data.from_items([{"number": i, "article": pickle.dumps(a)} for i, a in enumerate(articles)])
        .map_batches(_chunk_articles, fn_kwargs={"settings": settings}, batch_size=_BATCH, batch_format="pandas")
        .take_all()
    )
    rows.sort(key=lambda row: row["number"])
    return [chunk for row in rows for chunk in pickle.loads(row["chunks"])]


def _chunk_articles(batch, settings: Settings):
    from ingest.pipeline import article_chunks

    chunker = _chunker(settings.model, settings.chunk_tokens, settings.chunk_overlap_tokens)
    batch["chunks"] = [pickle.dumps(article_chunks(pickle.loads(blob), chunker)) for blob in batch["article"]]
    return batch.drop(columns=["article"])


@functools.cache
def _chunker(model: str, chunk_tokens: int, overlap_tokens: int):
    """One tokenizer per Ray worker process (they outlive tasks), loaded on first use."""
    from transformers import AutoTokenizer

    from index.encoder import resolve_model_path
    from ingest.chunk import Chunker

    return Chunker(AutoTokenizer.from_pretrained(resolve_model_path(model)), chunk_tokens, overlap_tokens)


def batch_encoder(options: RayOptions, settings: Settings) -> BatchEncoder:
    """`embed_chunks`' batches embedded by an actor pool of encoders, as they finish."""

    def encode(batches: list[list[str]]) -> Iterator[tuple[int, Any]]:
        import ray.data

        gpus = int(ray.cluster_resources().get("GPU", 0))
        actors = min(options.encoders or gpus or _cpus(), len(batches))  # no idle actors
        rows = (
            ray.data.from_items([{"number": i, "texts": pickle.dumps(t)} for i, t in enumerate(batches)],
                                override_num_blocks=len(batches))
            .map(_EmbedBatch, fn_constructor_kwargs={"settings": settings},
                 compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=1 if gpus else 0)
        )
        for row in rows.iter_rows():
            yield int(row["number"]), pickle.loads(row["vectors"])

    return encode


class _EmbedBatch:
    """Ray actor UDF: the model loaded once, one thread (the actor's CPU), or its GPU."""

    def __init__(self, settings: Settings) -> None:
        import torch

        from index.encoder import Encoder

        if not torch.cuda.is_available():
            torch.set_num_threads(1)
        self._encoder = Encoder(settings.model, settings.embed_batch_size)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        vectors = self._encoder.encode(pickle.loads(row["texts"]))
        return {"number": row["number"], "vectors": pickle.dumps(vectors)}


def _cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
