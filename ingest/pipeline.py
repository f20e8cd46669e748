"""Incremental ingest: diff the folder (`run_ingest`), or the files and ids an editor names
(`run_update`), against the served version, process only what changed (new and changed
articles become one new segment, removed and replaced ones are marked deleted), publish a
complete new version, then merge segments as the policy asks.

The new articles' chunks and vectors are made by ingest/build.py; what a run reports is
ingest/report.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index import merge, store
from index.encoder import TextEncoder
from index.errors import IngestError, QAError
from index.manifest import VERSIONS, Manifest
from index.models import EmbeddingSpec
from index.records import ArticleRecord
from index.segment import SEGMENTS, DenseOptions
from index.settings import Settings
from ingest.build import chunks_and_vectors, ready_encoder
from ingest.load import LoadResult, load_folder, load_paths
from ingest.report import IngestReport, timed

if TYPE_CHECKING:
    from ingest.ray_engine import RayOptions

log = logging.getLogger("ingest")

# Bump when cleaning, segmentation or chunking change what an article turns into (or what
# the index is built from: 2 = BM25 keeps one-character tokens, k1 1.2, b 0.5; 3 = chunks
# follow paragraphs; 4 = BM25 text starts with the article's title). Chunks whose text did not
# change keep their cached vectors.
PIPELINE_VERSION = 5  # 5 = quotation whose speaker the text does not name has none


def chunking_params(settings: Settings) -> dict[str, Any]:
    return {
        "chunk_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.chunk_overlap_tokens,
        "pipeline_version": PIPELINE_VERSION,
    }


def run_ingest(
    articles_dir: Path,
    settings: Settings,
    encoder: TextEncoder | None = None,
    progress: bool | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    optimize: bool = False,
    ray: RayOptions | None = None,
) -> IngestReport:
    """Bring the index at `settings.index_dir` in line with `articles_dir`.

    `on_progress(stage, done, total)` reports "embedding" batches, "publishing" and each
    "merging". `optimize`: merge every segment into one afterwards. `ray`: read, chunk and
    embed on Ray (ingest/ray_engine.py) instead of in this process."""
    if ray is not None:
        from ingest import ray_engine

        with ray_engine.cluster(ray):
            return _run_ingest(articles_dir, settings, encoder, progress, on_progress, optimize, ray)
    return _run_ingest(articles_dir, settings, encoder, progress, on_progress, optimize, None)


def _run_ingest(
    articles_dir: Path,
    settings: Settings,
    encoder: TextEncoder | None,
    progress: bool | None,
    on_progress: Callable[[str, int, int], None] | None,
    optimize: bool,
    ray: RayOptions | None,
) -> IngestReport:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    if not articles_dir.is_dir():
        raise IngestError(f"articles folder {articles_dir} does not exist or is not a folder")
    with timed(timings, "load"):
        if ray is not None:
            from ingest import ray_engine

            loaded = ray_engine.load_folder(articles_dir, settings.max_article_bytes)
        else:
            loaded = load_folder(articles_dir, settings.max_article_bytes)
    if not loaded.articles:
        raise IngestError(
            f"no articles found in {articles_dir} ({len(loaded.skipped)} files skipped); "
            "supported: .txt, .md, .html, .jsonl"
        )

    def diff(base: store.UpdateBase | None, reason: str | None) -> IngestReport:
        if reason:
            log.info("rebuilding every article: %s", reason)
        report = _diff(loaded.articles, base)
        report.rebuild_reason = reason
        return report

    return _ingest(settings, loaded, diff, encoder, progress, on_progress, optimize, started, timings, ray)


def run_update(
    paths: Sequence[Path],
    settings: Settings,
    encoder: TextEncoder | None = None,
    remove: Sequence[str] = (),
    progress: bool | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    optimize: bool = False,
    missing_ok: bool = False,
) -> IngestReport:
    """Add or replace the articles in the files `paths` and remove the articles `remove`,
    without reading the rest of the articles folder: the cost follows the change, not the
    archive. Everything else is as `run_ingest` (the same segments, publish and merges).
    An id in `remove` that the index does not hold is an error, unless `missing_ok`."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with timed(timings, "load"):
        loaded = load_paths(paths, settings.max_article_bytes)
    if paths and not loaded.articles:
        raise IngestError(f"no article could be read from {', '.join(map(str, paths))}: "
                          + "; ".join(f"{s.source}: {s.reason}" for s in loaded.skipped))
    both = sorted(set(remove) & {a.id for a in loaded.articles})
    if both:
        raise IngestError(f"asked to add and to remove the same articles: {', '.join(both)}")

    def diff(base: store.UpdateBase | None, reason: str | None) -> IngestReport:
        if reason:
            raise IngestError(f"every article must be rebuilt ({reason}): run qa-ingest over the whole articles folder")
        report = IngestReport()
        for article in loaded.articles:
            held = base.find(article.id) if base else None
            kind = report.added if held is None else report.unchanged if held[2] == article.content_hash else report.changed
            kind.append(article.id)
        unknown = {a for a in remove if base is None or base.find(a) is None}
        if unknown and not missing_ok:
            raise IngestError(f"not in the index, so not removed: {', '.join(sorted(unknown))}")
        report.removed = sorted(set(remove) - unknown)
        return report

    return _ingest(settings, loaded, diff, encoder, progress, on_progress, optimize, started, timings)


def _ingest(
    settings: Settings,
    loaded: LoadResult,
    diff: Callable[[store.UpdateBase | None, str | None], IngestReport],
    encoder: TextEncoder | None,
    progress: bool | None,
    on_progress: Callable[[str, int, int], None] | None,
    optimize: bool,
    started: float,
    timings: dict[str, float],
    ray: RayOptions | None = None,
) -> IngestReport:
    """Under the ingest lock: `diff` the loaded articles against the served version, embed
    and publish what it says changed, then merge as the policy asks."""
    for skipped in loaded.skipped:
        log.warning("skipped %s: %s", skipped.source, skipped.reason)
    for notice in loaded.notices:
        log.warning("%s: %s", notice.source, notice.message)
    index_dir = settings.index_dir
    spec = EmbeddingSpec.from_settings(settings)
    with store.ingest_lock(index_dir):
        existing = _written(index_dir)
        base, reason = _previous_version(index_dir, settings, spec)
        report = diff(base, reason)
        report.skipped = loaded.skipped
        report.notices = loaded.notices
        manifest = base.manifest if base else None
        if base is None or report.added or report.changed or report.removed:
            manifest = _publish_changes(
                settings, spec, loaded, base, report, encoder, progress, on_progress, timings, ray
            )
        with timed(timings, "merge"):
            report.merges = merge.run_merges(
                index_dir, model=spec.model, chunking=chunking_params(settings),
                keep_versions=settings.keep_versions, dense=dense_options(settings), optimize=optimize,
                on_merge=(lambda: on_progress("merging", 0, 1)) if on_progress else None, embedding=spec,
            )
        if report.merges:
            manifest = store.current_manifest(index_dir)
            report.published = True
        report.bytes_written = sum(
            p.stat().st_size for entry in _written(index_dir) - existing for p in _files_under(entry)
        )
    report.version = manifest.version
    report.chunks = manifest.counts["chunks"]
    report.segments = len(manifest.segments)
    report.timings = {stage: round(seconds, 3) for stage, seconds in timings.items()}
    report.seconds = time.perf_counter() - started
    return report


def _publish_changes(
    settings: Settings,
    spec: EmbeddingSpec,
    loaded: LoadResult,
    base: store.UpdateBase | None,
    report: IngestReport,
    encoder: TextEncoder | None,
    progress: bool | None,
    on_progress: Callable[[str, int, int], None] | None,
    timings: dict[str, float],
    ray: RayOptions | None,
) -> Manifest:
    """Publish the version `report` asks for: the added and changed articles embedded into
    one new segment, the removed ones (and the old copies of the changed) marked deleted."""
    fresh = {*report.added, *report.changed}
    new = sorted((a for a in loaded.articles if a.id in fresh), key=lambda a: a.id)
    added = None
    if new:
        encoder = ready_encoder(encoder, settings, spec, base, timings)
        chunks, vectors, report.chunks_embedded = chunks_and_vectors(
            new, settings, encoder, progress, on_progress, timings, ray
        )
        added = store.NewArticles(new, chunks, vectors)
    if on_progress:
        on_progress("publishing", 0, 1)
    with timed(timings, "publish"):
        manifest = store.publish(
            settings.index_dir,
            base=base,
            new=added,
            remove=report.removed,
            model=spec.model,
            chunking=chunking_params(settings),
            keep_versions=settings.keep_versions,
            dense=dense_options(settings),
            embedding=spec,
        )
    report.published = True
    return manifest


def _written(index_dir: Path) -> set[Path]:
    """The segment and version folders in the index (what a run adds is what it wrote)."""
    return {
        entry for folder in (SEGMENTS, VERSIONS) if (index_dir / folder).is_dir()
        for entry in (index_dir / folder).iterdir()
    }


def _files_under(entry: Path) -> Iterator[Path]:
    return (p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else iter(())


def dense_options(settings: Settings) -> DenseOptions:
    return DenseOptions(
        setting=settings.dense_index,
        ann_min_chunks=settings.dense_ann_min_chunks,
        nprobe=settings.ivf_nprobe,
        ef_search=settings.hnsw_ef_search,
    )


def _previous_version(
    index_dir: Path, settings: Settings, spec: EmbeddingSpec
) -> tuple[store.UpdateBase | None, str | None]:
    """The served version if its articles can be kept, else None and why not: a version of
    another embedding spec is never added to (its vectors and new ones would not compare).

    Only its manifest, segment.json files and article keys are opened: loading FAISS and BM25
    (and checking their checksums) just to add an article cost seconds at 100k articles."""
    try:
        manifest = store.current_manifest(index_dir)
        if manifest is None:
            return None, None
        built = manifest.embedding_spec
        if built != spec:
            return None, f"the embedding changed from {built.describe()} to {spec.describe()}"
        if manifest.chunking != chunking_params(settings):
            return None, f"chunking changed from {manifest.chunking} to {chunking_params(settings)}"
        return store.open_for_update(index_dir, embedding=spec), None
    except QAError as exc:
        return None, f"the current index cannot be read ({exc})"


def _diff(articles: list[ArticleRecord], base: store.UpdateBase | None) -> IngestReport:
    report = IngestReport()
    before = base.hashes if base else {}
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
