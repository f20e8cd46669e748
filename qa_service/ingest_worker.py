"""The process that runs the server's ingest jobs, so that the server itself never loads torch.

Embedding loads torch and the model, about 500 MB that a process never gives back: run in the
server, the first job left it at 786 MB resident instead of 296 on the sample, a third of the
1.5 GB a million-chunk server is allowed. So jobs run in a child process, spawned at the first
job. It is kept while jobs keep coming (an editor's articles one after another pay the model's
loading once: 0.2 s a job instead of 6 to 7.5) and stopped after `QA_INGEST_WORKER_IDLE_S`
without one, which gives its memory back.

The child sends ("progress", stage, done, total) messages while a job runs, then ("done",
report, result) or ("failed", reason).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

from index.errors import QAError
from ingest.load import META_SUFFIX
from ingest.pipeline import run_ingest, run_update
from ingest.report import IngestReport
from ingest.sync import SyncOptions, sync
from qa_service.articles import files_of
from qa_service.settings import ServiceSettings

log = logging.getLogger("qa_service")

_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the server's

Progress = Callable[[str, int, int], None]


class IngestWorker:
    """Runs jobs one at a time in its child process (started when needed)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._idle_s = settings.ingest_worker_idle_s
        self._process: Any = None
        self._pipe: Any = None
        self._lock = threading.Lock()  # held for a whole job: the idle stop never cuts one short
        self._jobs_run = 0

    def run(
        self, article_id: str | None, sync_from: list[str] | None, progress: Progress
    ) -> tuple[IngestReport, dict[str, Any]]:
        """One job (as `JobRunner.submit` describes it): its report and its result for
        GET /admin/jobs. Raises QAError with the reason when it fails."""
        with self._lock:
            self._jobs_run += 1
            if self._process is None or not self._process.is_alive():
                self._start()
            try:
                self._pipe.send((article_id, sync_from))
                while True:
                    message = self._pipe.recv()
                    if message[0] != "progress":
                        break
                    progress(*message[1:])
            except (EOFError, OSError):
                self._process.join(5)
                code = self._process.exitcode
                self._discard()
                raise QAError(f"the ingest process ended without a result (exit code {code})") from None
            finally:
                self._stop_later(self._jobs_run)
        if message[0] == "failed":
            raise QAError(message[1])
        return message[1], message[2]

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> None:
        self._pipe, child_end = _SPAWN.Pipe()
        self._process = _SPAWN.Process(target=_serve, args=(self._settings, child_end),
                                       name="ingest-worker", daemon=True)
        self._process.start()
        child_end.close()

    def _stop_later(self, jobs_run: int) -> None:
        timer = threading.Timer(self._idle_s, self._stop_if_idle, args=(jobs_run,))
        timer.daemon = True
        timer.start()

    def _stop_if_idle(self, jobs_run: int) -> None:
        with self._lock:
            if jobs_run == self._jobs_run:  # no job since this timer was set
                self._stop()

    def _stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._pipe.send(None)
            except OSError:
                pass
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
        self._discard()

    def _discard(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
        self._process = self._pipe = None


def _serve(settings: ServiceSettings, pipe: Any) -> None:
    """The child: jobs from `pipe` until None (or the server's end closes)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    while True:
        try:
            request = pipe.recv()
        except EOFError:
            return
        if request is None:
            return
        _job(settings, *request, pipe)


def _job(settings: ServiceSettings, article_id: str | None, sync_from: list[str] | None, pipe: Any) -> None:
    def update(stage: str, done: int, total: int) -> None:
        pipe.send(("progress", stage, done, total))

    folder = settings.articles_dir
    options: dict[str, Any] = {"progress": False, "on_progress": update}
    synced = None
    try:
        if sync_from is not None:
            update("syncing", 0, 0)
            sync_options = SyncOptions(allow_private=settings.sync_allow_private)
            synced = sync(sync_from, folder, sync_options, progress=lambda done, total: update("syncing", done, total))
            report = run_ingest(folder, settings, **options)
        elif article_id is None:
            report = run_ingest(folder, settings, **options)
        else:
            # The files as they are when the job runs: a later POST or DELETE of the same
            # article may have changed them since this job was queued.
            paths = [p for p in files_of(folder, article_id) if not p.name.endswith(META_SUFFIX)]
            report = run_update(paths, settings, remove=[] if paths else [article_id], missing_ok=True, **options)
        result = report.to_json() if synced is None else {"sync": synced.to_json(), **report.to_json()}
        pipe.send(("done", report, result))
    except QAError as exc:
        pipe.send(("failed", str(exc)))
    except Exception as exc:  # the worker must outlive a bad job; the job reports it
        log.exception("ingest job failed")
        pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
