"""Background ingest jobs: one at a time, in a worker thread, with progress and result.

The service never re-implements ingestion: a reindex job is `ingest.pipeline.run_ingest` over
the articles folder, and a job for one article (POST or DELETE /articles) is `run_update` with
that article's files, which reads nothing else of the folder; the API and `qa-ingest` build
identical versions. A sync job (POST /admin/sync, or the QA_SYNC_INTERVAL_S timer) is
`qa-sync --ingest`: `ingest.sync.sync` from QA_SYNC_URLS into the folder, then `run_ingest`.
A second `qa-ingest` running at the same moment is refused by the ingest lock, and the job
reports that.

Jobs run in the ingest worker, a child process (qa_service/ingest_worker.py): the server
itself never loads torch.
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

from index.errors import QAError
from ingest.report import IngestReport
from qa_service.ingest_worker import IngestWorker
from qa_service.settings import ServiceSettings

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
    def __init__(self, settings: ServiceSettings, on_finished: Callable[[Job, IngestReport | None], None]) -> None:
        self._worker = IngestWorker(settings)
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
        self._worker.stop()

    def _run(self, job: Job, article_id: str | None, sync_from: list[str] | None) -> None:
        job.status, job.started, job.stage = "running", time.time(), "loading"
        report, outcome = None, "failed"

        def update(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total

        try:
            report, job.result = self._worker.run(article_id, sync_from, update)
            outcome = "succeeded"
        except QAError as exc:
            job.error = str(exc)
        except Exception as exc:  # a job must never take the worker thread down; report it instead
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
