"""Holds the searcher for the index version being served and swaps it when a new one is published.

A request takes the current searcher once, at its start, and uses it to the end, so requests in
flight finish on the version they started with while new requests already see the new one. The
swap is a single reference assignment; the old version is freed when its last request is done.

The reranker (QA_RERANK, QA_RERANK_URL) is built once and shared by every searcher: a
cross-encoder is loaded before the first version is served, not at each swap nor in the first
question. One that fails to load is logged and leaves the service up: searches keep the fused
order and say why (`rerank_error`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from index.encoder import TextEncoder
from index.confidence import calibration_stamp
from index.errors import IndexNotFoundError, QAError, RerankError
from index.manifest import current_version_name
from index.rerankers import make_reranker
from index.search import Searcher
from index.settings import Settings
from index.store import load_index

log = logging.getLogger("qa_service")


class IndexHolder:
    def __init__(
        self,
        settings: Settings,
        encoder: TextEncoder,
        on_swap: Callable[[Searcher], None] | None = None,
        on_load_error: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self.reranker = make_reranker(settings)
        self._reranker_warm = False
        self._on_swap = on_swap
        self._on_load_error = on_load_error
        self._searcher: Searcher | None = None
        self._load_lock = threading.Lock()
        self._failed_version: str | None = None
        self._failed_calibration: int | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def searcher(self) -> Searcher | None:
        return self._searcher

    def refresh(self) -> bool:
        """Load the published version if it is not the one served, or search it with the index
        folder's calibration when `qa-calibrate` rewrote it. True when it swapped.

        A version that fails to load (corrupt, wrong model) is reported once and the version
        already served stays in service; so does a calibration file that cannot be read."""
        with self._load_lock:
            published = current_version_name(self._settings.index_dir)
            served = self._searcher.version if self._searcher else None
            if published is not None and published == served:
                return self._recalibrate()
            if published is None or published == self._failed_version:
                if published is None and served is None:
                    self.last_error = str(IndexNotFoundError(
                        f"no index at {self._settings.index_dir}: build one with `qa-ingest "
                        f"ARTICLES_DIR --index {self._settings.index_dir}` or POST /admin/reindex"
                    ))
                return False
            try:
                # Segments the new version shares with the served one are used as loaded:
                # a swap holds only the new segments twice, not the whole index.
                shared = self._searcher.index.segments if self._searcher else None
                index = load_index(self._settings.index_dir, embedding=self._encoder.spec, loaded=shared)
                self._warm_reranker()
                searcher = Searcher(index, self._encoder, self._settings, reranker=self.reranker)
            except QAError as exc:
                self._failed_version = published
                self.last_error = f"index version {published} not loaded: {exc}"
                log.error("%s; still serving %s", self.last_error, served or "nothing")
                if self._on_load_error:
                    self._on_load_error(published)
                return False
            self._searcher = searcher
            self._failed_version = None
            self.last_error = None
            log.info("serving index version %s (%d chunks)", searcher.version, index.live_chunks)
            if self._on_swap:
                self._on_swap(searcher)
            return True

    def _recalibrate(self) -> bool:
        """A searcher of the served version with the calibration now in the index folder, when
        the file changed since the served searcher read it."""
        served = self._searcher
        stamp = calibration_stamp(self._settings.index_dir)
        if stamp == served.calibration_stamp or stamp == self._failed_calibration:
            return False
        try:
            searcher = Searcher(served.index, self._encoder, self._settings, reranker=self.reranker)
        except QAError as exc:
            self._failed_calibration = stamp
            self.last_error = f"calibration not loaded: {exc}"
            log.error("%s; still searching with %s", self.last_error, served.calibration.reason)
            return False
        self._searcher = searcher
        self._failed_calibration = None
        if self.last_error and self.last_error.startswith("calibration not loaded"):
            self.last_error = None
        log.info("confidence now from %s", searcher.calibration.reason)
        return True

    def _warm_reranker(self) -> None:
        """Load the reranker's model, once, before the first version is served."""
        if self.reranker is None or self._reranker_warm:
            return
        self._reranker_warm = True
        try:
            self.reranker.warm_up()
        except RerankError as exc:
            log.error("%s; passages keep the fused order", exc)
        else:
            log.info("reranking with %s", self.reranker.spec.describe())

    def start_watching(self, interval_s: float) -> None:
        """Poll the CURRENT pointer in a background thread (qa-ingest may publish beside us)."""

        def watch() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except OSError as exc:  # the index folder may be briefly unreadable
                    log.warning("checking for a new index version failed: %s", exc)

        self._watcher = threading.Thread(target=watch, name="index-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.reranker is not None:
            self.reranker.close()
