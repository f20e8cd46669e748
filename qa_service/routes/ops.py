"""For the operator and the orchestrator: GET /healthz (the process is up), GET /readyz (an
index is loaded and answering, and which) and GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from qa_service.metrics import CONTENT_TYPE
from qa_service.schemas import Health, Readiness
from qa_service.service import ServiceDep

METRICS_DOC = {200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}}


def ops_router() -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", response_model=Health)
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    def readyz(service: ServiceDep, response: Response) -> Readiness:
        """An index is loaded and answering; which version."""
        searcher = service.holder.searcher
        if searcher is None:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return Readiness(ready=False, index_version=None, articles=0, chunks=0,
                             detail=service.holder.last_error)
        return Readiness(ready=True, index_version=searcher.version, articles=len(searcher.index.articles),
                         chunks=searcher.index.live_chunks, detail=service.holder.last_error,
                         calibration=searcher.calibration.reason)

    @router.get("/metrics", response_class=Response, responses=METRICS_DOC)
    def metrics(service: ServiceDep) -> Response:
        service.metrics.ingest_jobs_pending.set(service.jobs.running())
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return router
