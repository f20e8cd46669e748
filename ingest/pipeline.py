"""Incremental ingest: diff the folder against the served version, process only what changed,
publish a complete new version."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index import store
from index.encoder import Encoder
from index.errors import IngestError, QAError
from index.records import ArticleRecord, Chunk
from index.settings import Settings
from ingest.chunk import Chunker
from ingest.clean import clean
from ingest.embed import VectorCache, embed_chunks
from ingest.load import Skipped, load_folder
from ingest.segment import segment

log = logging.getLogger("ingest")

# Bump when cleaning, segmentation or chunking change what an article turns into (or what
# the index is built from: 2 = BM25 keeps one-character tokens, k1 1.2, b 0.5; 3 = chunks
# follow paragraphs; 4 = BM25 text starts with the article's title). Chunks whose text did not
# change keep their cached vectors.
PIPELINE_VERSION = 4


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    version: str | None = None
    published: bool = False
    rebuild_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
            "version": self.version,
            "published": self.published,
            "chunks": self.chunks,
            "rebuild_reason": self.rebuild_reason,
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
        }


def chunking_params(settings: Settings) -> dict[str, Any]:
    return {
        "chunk_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.chunk_overlap_tokens,
        "pipeline_version": PIPELINE_VERSION,
    }


def article_chunks(article: ArticleRecord, chunker: Chunker) -> list[Chunk]:
    """Clean, segment and chunk one article."""
    return chunker.chunk(article, segment(article.text, clean(article.text), article.author))


def run_ingest(
    articles_dir: Path,
    settings: Settings,
    encoder: Encoder | None = None,
    progress: bool | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> IngestReport:
    """Bring the index at `settings.index_dir` in line with `articles_dir`.

    `on_progress(stage, done, total)` reports "embedding" batches and "publishing"."""
    started = time.perf_counter()
    if not articles_dir.is_dir():
        raise IngestError(f"articles folder {articles_dir} does not exist or is not a folder")
    loaded = load_folder(articles_dir, settings.max_article_bytes)
    for skipped in loaded.skipped:
        log.warning("skipped %s: %s", skipped.source, skipped.reason)
    if not loaded.articles:
        raise IngestError(
            f"no articles found in {articles_dir} ({len(loaded.skipped)} files skipped); "
            "supported: .txt, .md, .html, .jsonl"
        )
    index_dir = settings.index_dir
    with store.ingest_lock(index_dir):
        previous, reason = _previous_version(index_dir, settings)
        report = _diff(loaded.articles, previous)
        report.skipped = loaded.skipped
        report.rebuild_reason = reason
        if reason:
            log.info("rebuilding every article: %s", reason)
        if previous is not None and not (report.added or report.changed or report.removed):
            report.version = previous.version
            report.chunks = len(previous.chunks)
            report.seconds = time.perf_counter() - started
            return report

        encoder = encoder or Encoder(settings.model, settings.embed_batch_size)
        if encoder.model_name != settings.model:
            raise IngestError(f"encoder is {encoder.model_name!r} but settings say {settings.model!r}")
        _check_chunk_size(settings, encoder)
        chunks, vectors, embedded = _build(
            loaded.articles, previous, report, settings, encoder, progress, on_progress
        )
        if on_progress:
            on_progress("publishing", 0, 1)
        manifest = store.publish(
            index_dir,
            articles=sorted(loaded.articles, key=lambda a: a.id),
            chunks=chunks,
            vectors=vectors,
            model=settings.model,
            chunking=chunking_params(settings),
            keep_versions=settings.keep_versions,
            dense=dense_options(settings),
        )
    report.chunks = len(chunks)
    report.chunks_embedded = embedded
    report.version = manifest.version
    report.published = True
    report.seconds = time.perf_counter() - started
    return report


def dense_options(settings: Settings) -> store.DenseOptions:
    return store.DenseOptions(
        setting=settings.dense_index,
        ann_min_chunks=settings.dense_ann_min_chunks,
        nprobe=settings.ivf_nprobe,
        ef_search=settings.hnsw_ef_search,
    )


def _previous_version(
    index_dir: Path, settings: Settings
) -> tuple[store.ReusableVersion | None, str | None]:
    """The served version if its articles can be reused, else None and why not.

    Only its chunk table and memory-mapped vectors are opened: loading FAISS and BM25 (and
    checking their checksums) just to copy rows cost seconds at 100k articles."""
    try:
        manifest = store.current_manifest(index_dir)
        if manifest is None:
            return None, None
        if manifest.model != settings.model:
            return None, f"the model changed from {manifest.model!r} to {settings.model!r}"
        if manifest.chunking != chunking_params(settings):
            return None, f"chunking changed from {manifest.chunking} to {chunking_params(settings)}"
        return store.open_reusable(index_dir, expected_model=settings.model), None
    except QAError as exc:
        return None, f"the current index cannot be read ({exc})"


def _diff(articles: list[ArticleRecord], previous: store.ReusableVersion | None) -> IngestReport:
    report = IngestReport()
    before = previous.manifest.articles if previous else {}
    for article in articles:
        if article.id not in before:
            report.added.append(article.id)
        elif before[article.id] != article.content_hash:
            report.changed.append(article.id)
        else:
            report.unchanged.append(article.id)
    now = {a.id for a in articles}
    report.removed = sorted(set(before) - now)
    return report


def _check_chunk_size(settings: Settings, encoder: Encoder) -> None:
    if settings.chunk_tokens > encoder.max_tokens:
        raise IngestError(
            f"chunk_tokens {settings.chunk_tokens} is more than model {settings.model!r} reads "
            f"({encoder.max_tokens} word pieces); lower QA_CHUNK_TOKENS"
        )


def _build(
    articles: list[ArticleRecord],
    previous: store.ReusableVersion | None,
    report: IngestReport,
    settings: Settings,
    encoder: Encoder,
    progress: bool | None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[Chunk], np.ndarray, int]:
    """All chunks in article-id order with their vectors; only new text is embedded.

    An unchanged article's chunks are rebuilt from the previous version's table columns and
    the article's text (same content hash, so `text[start:end]` is the same passage), and
    its vectors are copied from the previous vectors.npy in one vectorised gather."""
    reuse = set(report.unchanged)
    old_rows: dict[str, np.ndarray] = {}
    if previous is not None and reuse:
        table = previous.chunks
        order = np.argsort(table.article_index, kind="stable")
        bounds = np.searchsorted(table.article_index[order], np.arange(len(table.article_list) + 1))
        for position, article_id in enumerate(table.article_list):
            if article_id in reuse:
                old_rows[article_id] = order[bounds[position] : bounds[position + 1]]

    chunker = Chunker(encoder.tokenizer, settings.chunk_tokens, settings.chunk_overlap_tokens)
    chunks: list[Chunk] = []
    new_chunks: list[Chunk] = []
    old_out: list[int] = []  # output rows filled from the previous version
    old_src: list[int] = []  # ... and the previous rows they come from
    new_out: list[int] = []
    for article in sorted(articles, key=lambda a: a.id):
        if article.id in reuse:
            for row in old_rows.get(article.id, ()):
                old_out.append(len(chunks))
                old_src.append(int(row))
                chunks.append(table.chunk_with_text(int(row), article.text))
            continue
        made = article_chunks(article, chunker)
        if not made:
            log.warning("article %s has no text left after cleaning", article.id)
        for chunk in made:
            new_out.append(len(chunks))
            chunks.append(chunk)
            new_chunks.append(chunk)

    cache = VectorCache(settings.index_dir / "cache" / "vectors.sqlite", settings.model, encoder.dim)
    try:
        new_vectors, embedded = embed_chunks(
            new_chunks,
            encoder,
            cache,
            progress=progress,
            on_batch=(lambda done, total: on_progress("embedding", done, total)) if on_progress else None,
        )
    finally:
        cache.close()
    vectors = np.zeros((len(chunks), encoder.dim), dtype=np.float32)
    if old_out:
        src = np.asarray(old_src, dtype=np.int64)
        # Rows come in previous-version order, so the gather reads the mapped file sequentially.
        vectors[np.asarray(old_out, dtype=np.int64)] = previous.vectors[src]
    if new_out:
        vectors[np.asarray(new_out, dtype=np.int64)] = new_vectors
    return chunks, vectors, embedded
