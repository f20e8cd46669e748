"""POST /admin/sync: bring the articles folder in line with the site's feeds and sitemaps
(QA_SYNC_URLS) and ingest it, as a background job; and the timer that does the same every
QA_SYNC_INTERVAL_S."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from qa_service.jobs import Every, Job
from qa_service.schemas import ErrorOut, JobAccepted
from qa_service.service import ADMIN_ERRORS, Service, ServiceDep, job_accepted, require_admin

SYNC_REASON = "sync from QA_SYNC_URLS"


def sync_router() -> APIRouter:
    router = APIRouter(tags=["admin"])

    @router.post(
        "/admin/sync", status_code=202, response_model=JobAccepted,
        responses={**ADMIN_ERRORS, 409: {"model": ErrorOut, "description": "QA_SYNC_URLS is not set"}},
        dependencies=[Depends(require_admin)],
    )
    def start_sync(service: ServiceDep) -> JobAccepted:
        """Fetch the pages QA_SYNC_URLS list into the articles folder (conditional requests
        for pages fetched before), then ingest the folder; the job's result holds the sync's
        counts and failures under `sync`, and the ingest's figures beside them."""
        if not service.settings.sync_urls:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "no feeds or sitemaps to sync from: start the service with QA_SYNC_URLS set",
            )
        return job_accepted(_submit(service))

    return router


def _submit(service: Service) -> Job:
    return service.jobs.submit(SYNC_REASON, sync_from=list(service.settings.sync_urls))


def start_sync_timer(service: Service) -> Every | None:
    """A sync job at start and every QA_SYNC_INTERVAL_S, a turn skipped while one is pending;
    None when either setting is unset."""
    settings = service.settings
    if not settings.sync_urls or not settings.sync_interval_s:
        return None

    def turn() -> None:
        if not service.jobs.pending(SYNC_REASON):
            _submit(service)

    return Every(settings.sync_interval_s, turn, name="sync-timer")
