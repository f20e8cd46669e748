"""New and changed articles into the contents of a new segment: each article cleaned,
split into body and comments and chunked, and one vector per chunk, embedded only where the
vector cache has not seen the text; here or on Ray (ingest/ray_engine.py). The encoder is
checked first against the settings, the served version and the chunk size.

What an article turns into is versioned: bump PIPELINE_VERSION (ingest/pipeline.py) when
cleaning, segmentation or chunking change it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from index.encoder import TextEncoder, make_encoder
from index.errors import IngestError
from index.manifest import check_embedding
from index.models import EmbeddingSpec
from index.records import ArticleRecord, Chunk
from index.settings import Settings
from ingest.chunk import Chunker
from ingest.clean import clean
from ingest.embed import VectorCache, embed_chunks
from ingest.report import timed
from ingest.segment import segment

if TYPE_CHECKING:
    from index.store import UpdateBase
    from ingest.ray_engine import RayOptions

log = logging.getLogger("ingest")


def article_chunks(article: ArticleRecord, chunker: Chunker) -> list[Chunk]:
    """Clean, segment and chunk one article."""
    return chunker.chunk(article, segment(article.text, clean(article.text), article.author))


def ready_encoder(
    encoder: TextEncoder | None,
    settings: Settings,
    spec: EmbeddingSpec,
    base: UpdateBase | None,
    timings: dict[str, float],
) -> TextEncoder:
    """The encoder to embed new articles with (`encoder`, or the settings' own), its model
    loaded; refused if it embeds otherwise than the settings ask, or than the served version
    was embedded, or reads fewer word pieces than a chunk holds."""
    encoder = encoder or make_encoder(settings)
    if encoder.spec != spec:
        raise IngestError(f"the encoder embeds with {encoder.spec.describe()} but the "
                          f"settings ask for {spec.describe()}")
    with timed(timings, "model"):
        encoder.load_model()  # loaded at first use otherwise: timed on its own here
    if base is not None:  # the same spec; an endpoint's vectors must still fit
        check_embedding(base.manifest, spec, encoder.dim, source=settings.index_dir)
    _check_chunk_size(settings, encoder)
    return encoder


def _check_chunk_size(settings: Settings, encoder: TextEncoder) -> None:
    if settings.chunk_tokens > encoder.max_tokens:
        raise IngestError(
            f"chunk_tokens {settings.chunk_tokens} is more than {encoder.spec.describe()} reads "
            f"({encoder.max_tokens} word pieces); lower QA_CHUNK_TOKENS"
        )


def chunks_and_vectors(
    articles: list[ArticleRecord],
    settings: Settings,
    encoder: TextEncoder,
    progress: bool | None,
    on_progress: Callable[[str, int, int], None] | None,
    timings: dict[str, float],
    ray: RayOptions | None = None,
) -> tuple[list[Chunk], np.ndarray, int]:
    """The chunks of `articles` (sorted by id) with their vectors; only text the cache has
    not seen is embedded. `ray`: chunked and embedded on Ray."""
    encode_batches = None
    with timed(timings, "chunk"):
        if ray is not None:
            from ingest import ray_engine

            chunks = ray_engine.chunk_articles(articles, settings, ray)
            encode_batches = ray_engine.batch_encoder(ray, settings)
        else:
            chunker = Chunker(encoder.tokenizer, settings.chunk_tokens, settings.chunk_overlap_tokens)
            chunks = [chunk for article in articles for chunk in article_chunks(article, chunker)]
    for article in sorted({a.id for a in articles} - {c.article_id for c in chunks}):
        log.warning("article %s has no text left after cleaning", article)
    cache = VectorCache(settings.index_dir / "cache" / "vectors.sqlite", encoder.spec, encoder.dim)
    try:
        with timed(timings, "embed"):
            vectors, embedded = embed_chunks(
                chunks,
                encoder,
                cache,
                progress=progress,
                on_batch=(lambda done, total: on_progress("embedding", done, total)) if on_progress else None,
                encode_batches=encode_batches,
            )
    finally:
        cache.close()
    return chunks, np.asarray(vectors, dtype=np.float32).reshape(len(chunks), encoder.dim), embedded
