"""Index jobs (bearer token): POST /admin/reindex (bring the index in line with the articles
folder, in the background) and GET /admin/jobs/{id} (how such a job is going, or how it ended)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status

from qa_service.schemas import JobAccepted, JobOut
from qa_service.service import ADMIN_ERRORS, ServiceDep, job_accepted, require_admin


def admin_router() -> APIRouter:
    router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])

    @router.post("/admin/reindex", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS)
    def reindex(service: ServiceDep) -> JobAccepted:
        """Bring the index in line with the articles folder (incremental), in the background."""
        return job_accepted(service.jobs.submit("reindex requested"))

    @router.get("/admin/jobs/{job_id}", response_model=JobOut, responses=ADMIN_ERRORS)
    def get_job(job_id: Annotated[str, Path(max_length=64)], service: ServiceDep) -> JobOut:
        job = service.jobs.get(job_id)
        if job is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} (finished jobs are kept for a while)")
        return JobOut(**vars(job))

    return router
