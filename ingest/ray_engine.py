"""The Ray Data engine of qa-ingest (`--engine ray`, the `distributed` extra).

Reading files runs as Ray Data tasks. Cleaning, segmenting, chunking and embedding run on
the cluster's encoder actors: one model load per actor (one GPU each when the cluster has
GPUs), named and detached, so a later ingest on the same cluster finds them loaded. The
driver keeps what has to be in one place: the diff against the served
version, the vector cache (only texts it has not seen are sent out) and the publish, so the
result is the same version the in-process engine writes. Without an address a local Ray is
started for the run; with one (`ray://…` or `host:port`) the driver joins that cluster.

Rows carry pickled records: Ray Data moves them as bytes, and the records stay the
dataclasses the rest of the pipeline uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import IngestError
from index.models import EmbeddingSpec
from index.records import ArticleRecord, Chunk
from index.settings import Settings
from ingest.embed import BatchEncoder
from ingest.load import LoadResult, article_files, merge_reads, read_file


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray for the run
    encoders: int | None = None  # encoder actors; default: one per GPU, else one per CPU
    release_encoders: bool = False  # stop the cluster's encoder actors when the run ends


@contextlib.contextmanager
def cluster(options: RayOptions) -> Iterator[None]:
    """Ray initialised for the run (and left after it, if this run connected). In a cluster
    joined (`address`), the encoder actors stay for the next run unless `release_encoders`."""
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
        if options.release_encoders:
            release_encoders()
        if started:
            ray.shutdown()  # the driver leaves; a local Ray it started stops, with its actors


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
NAMESPACE = "article-qa"  # where the encoder actors are named


def _read_files(batch, max_bytes: int):
    batch["items"] = [pickle.dumps(read_file(Path(path), max_bytes)) for path in batch["path"]]
    return batch


def chunk_articles(articles: list[ArticleRecord], settings: Settings, options: RayOptions) -> list[Chunk]:
    """Every article's chunks, in article order (as the in-process engine makes them), cut by
    the encoder actors, whose tokenizer is loaded already."""
    batches = [articles[i : i + _BATCH] for i in range(0, len(articles), _BATCH)]
    done = dict(_map(encoder_actors(options, settings, len(batches)), "chunk", batches,
                     settings.chunk_tokens, settings.chunk_overlap_tokens))
    return [chunk for number in range(len(batches)) for chunk in done[number]]


def batch_encoder(options: RayOptions, settings: Settings) -> BatchEncoder:
    """`embed_chunks`' batches embedded by the cluster's encoder actors, as they finish."""

    def encode(batches: list[list[str]]) -> Iterator[tuple[int, Any]]:
        yield from _map(encoder_actors(options, settings, len(batches)), "encode", batches)

    return encode


def encoder_actors(options: RayOptions, settings: Settings, batches: int) -> list[Any]:
    """The cluster's encoder actors for this embedding (model or endpoint, and prefixes: the
    spec), at most one per batch. They are named and
    detached: they outlive the run, and the next ingest on the same cluster finds the model
    loaded (loading it cost each run about 4 s of its embedding stage, docs/history/benchmarks-2026-11-to-12.md).
    Each is pinned to a node: on a GPU cluster one per GPU, else one per CPU, taken from the
    nodes in turn. A CPU actor reserves no CPU, so that it never keeps a later run's Ray Data
    tasks waiting for a core (and Ray would not spread actors that reserve nothing)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    gpus = int(ray.cluster_resources().get("GPU", 0))
    slots = _slots("GPU" if gpus else "CPU")
    if not slots:
        raise IngestError("the Ray cluster has no alive node with a CPU or GPU to run encoders on")
    count = min(options.encoders or len(slots), len(slots), batches)
    spec = EmbeddingSpec.from_settings(settings)
    identity = f"{spec.key}\0{settings.embed_url}\0{settings.embed_batch_size}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:12]
    actor = ray.remote(_Encoder)
    return [
        actor.options(name=f"encoder-{key}-{node[:12]}-{i}", namespace=NAMESPACE, lifetime="detached",
                      get_if_exists=True, num_cpus=0, num_gpus=1 if gpus else 0,
                      scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
        .remote(settings)
        for node, i in slots[:count]
    ]


def _slots(resource: str) -> list[tuple[str, int]]:
    """(node id, slot) for each unit of `resource` on the alive nodes, the nodes taken in turn."""
    import ray

    per_node = {n["NodeID"]: int(n["Resources"].get(resource, 0)) for n in ray.nodes() if n["Alive"]}
    most = max(per_node.values(), default=0)
    return [(node, i) for i in range(most) for node, units in sorted(per_node.items()) if i < units]


def release_encoders() -> int:
    """Stop this cluster's encoder actors (they hold a model each); how many there were."""
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["namespace"] == NAMESPACE and a["name"].startswith("encoder-")]
    for name in names:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE))
    return len(names)


def _map(actors: list[Any], method: str, batches: list, *args: Any) -> Iterator[tuple[int, Any]]:
    """(number, result) of `method` on each batch, spread over `actors`, as they finish."""
    from ray.util import ActorPool

    pool = ActorPool(actors)
    return pool.map_unordered(lambda a, item: getattr(a, method).remote(item[0], item[1], *args), enumerate(batches))


class _Encoder:
    """Ray actor: the model loaded once, one thread (or its GPU), or a client of the embeddings
    endpoint `settings` name (`make_encoder`: the same spec as the driver's); it also cuts
    articles into chunks with the encoder's tokenizer."""

    def __init__(self, settings: Settings) -> None:
        from index.encoder import make_encoder

        if not settings.embed_url:
            import torch

            if not torch.cuda.is_available():
                torch.set_num_threads(1)
        self._encoder = make_encoder(settings)
        self._chunkers: dict[tuple[int, int], Any] = {}

    def encode(self, number: int, texts: list[str]) -> tuple[int, Any]:
        return number, self._encoder.encode(texts)

    def chunk(self, number: int, articles: list[ArticleRecord], chunk_tokens: int, overlap_tokens: int) -> tuple[int, list[Chunk]]:
        from ingest.build import article_chunks
        from ingest.chunk import Chunker

        key = (chunk_tokens, overlap_tokens)
        if key not in self._chunkers:
            self._chunkers[key] = Chunker(self._encoder.tokenizer, chunk_tokens, overlap_tokens)
        return number, [chunk for article in articles for chunk in article_chunks(article, self._chunkers[key])]
