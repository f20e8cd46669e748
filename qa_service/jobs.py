"""Background ingest jobs: one at a time, in a worker thread, with progress and result.

The service never re-implements ingestion: a reindex job is `ingest.pipeline.run_ingest` over
the articles folder, and a job for one article (POST or DELETE /articles) is `run_update` with
that article's files, which reads nothing else of the folder; the API and `qa-ingest` build
identical versions. A sync job (POST /admin/sync, or the QA_SYNC_INTERVAL_S timer) is
`qa-sync --ingest`: `ingest.sync.sync` from QA_SYNC_URLS into the folder, then `run_ingest`.
A second `qa-ingest` running at the same moment is refused by the ingest lock, and the job
reports that.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from index.encoder import Encoder
from index.errors import QAError
from index.settings import Settings
from ingest.load import META_SUFFIX
from ingest.pipeline import IngestReport, run_ingest, run_update
from ingest.sync import SyncOptions, sync
from qa_service.articles import files_of

log = logging.getLogger("qa_service")

JobStatus = Literal["queued", "running", "succeeded", "failed"]
_KEEP_JOBS = 200  # finished jobs remembered for GET /admin/jobs/{id}


@dataclass
class Job:
    id: str
    reason: str
    status: JobStatus = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stage: str | None = None
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        on_finished: Callable[[Job, IngestReport | None], None],
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._on_finished = on_finished
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, reason: str, article_id: str | None = None, sync_from: list[str] | None = None) -> Job:
        """Queue a job: bring the index in line with the whole articles folder, or with
        `article_id`'s own files only (gone: the article is removed), or first the folder with
        the feeds and sitemaps `sync_from` and then the index with the folder."""
        job = Job(id=uuid.uuid4().hex[:16], reason=reason)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > _KEEP_JOBS:
                oldest = next(iter(self._jobs.values()))
                if oldest.status in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
        self._executor.submit(self._run, job, article_id, sync_from)
        return job

    def pending(self, reason: str) -> bool:
        """Whether a job for `reason` is queued or running (the sync timer skips a turn then)."""
        with self._lock:
            return any(j.reason == reason and j.status in ("queued", "running") for j in self._jobs.values())

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def running(self) -> int:
        with self._lock:
            return sum(job.status in ("queued", "running") for job in self._jobs.values())

    def shutdown(self) -> None:
        """Wait for the job in progress: a publish is either completed or never visible, but
        waiting lets a started job finish its work instead of discarding it."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _progress(self, job: Job) -> Callable[[str, int, int], None]:
        def update(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total

        return update

    def _run(self, job: Job, article_id: str | None, sync_from: list[str] | None) -> None:
        job.status, job.started, job.stage = "running", time.time(), "loading"
        report, outcome = None, "failed"
        folder = self._settings.articles_dir
        update = self._progress(job)
        options: dict[str, Any] = {"encoder": self._encoder, "progress": False, "on_progress": update}
        synced = None
        try:
            if sync_from is not None:
                update("syncing", 0, 0)
                synced = sync(sync_from, folder, SyncOptions(), progress=lambda done, total: update("syncing", done, total))
                report = run_ingest(folder, self._settings, **options)
            elif article_id is None:
                report = run_ingest(folder, self._settings, **options)
            else:
                # The files as they are when the job runs: a later POST or DELETE of the same
                # article may have changed them since this job was queued.
                paths = [p for p in files_of(folder, article_id) if not p.name.endswith(META_SUFFIX)]
                report = run_update(paths, self._settings, remove=[] if paths else [article_id],
                                    missing_ok=True, **options)
            job.result = report.to_json() if synced is None else {"sync": synced.to_json(), **report.to_json()}
            outcome = "succeeded"
        except QAError as exc:
            job.error = str(exc)
        except Exception as exc:  # a job must never take the worker down; report it instead
            log.exception("ingest job %s failed", job.id)
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            # The callback switches the service to the new version first, so a client that
            # sees "succeeded" is already answered from it.
            try:
                self._on_finished(job, report)
            finally:
                job.finished, job.stage, job.status = time.time(), None, outcome


class Every:
    """Calls `action` every `interval_s` seconds in a daemon thread, the first time at once,
    until `stop()`; an exception is logged and the next turn comes as usual."""

    def __init__(self, interval_s: float, action: Callable[[], None], name: str) -> None:
        self._interval_s = interval_s
        self._action = action
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self._action()
            except Exception:  # a timer must keep its turns; the job reports what went wrong
                log.exception("%s failed", self._thread.name)
            self._stopped.wait(self._interval_s)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
