"""Schemathesis fuzzes every route of the service's own OpenAPI schema against the real app:
no 5xx, every status code documented, every response matching its schema.

A fixed seed (derandomize) keeps CI repeatable; QA_FUZZ_EXAMPLES raises the case count."""

from __future__ import annotations

import os
import shutil
from collections import Counter
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qa_service.app import create_app
from qa_service.settings import ServiceSettings
from tests.conftest import SAMPLE_ARTICLES, record
from tests.test_service import AUTH, TOKEN

EXAMPLES = int(os.environ.get("QA_FUZZ_EXAMPLES", "40"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Schemathesis reads the schema when the module is collected, so the app exists from then on;
# its lifespan (model and index) runs in the fixture below, before the first case.
WORKDIR = Path(tempfile.mkdtemp(prefix="qa-fuzz-"))
APP = create_app(ServiceSettings(
    index_dir=WORKDIR / "index", articles_dir=WORKDIR / "articles", admin_token=TOKEN,
    cors_origins=["https://news.example.org"], ask_rate_per_minute=0,
))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
OUTCOMES: Counter[str] = Counter()  # "METHOD path status" -> cases, for docs/reliability.md


@pytest.fixture(scope="module", autouse=True)
def running_app(sample_index: Path) -> Iterator[None]:
    shutil.copytree(SAMPLE_ARTICLES, WORKDIR / "articles")
    shutil.copytree(sample_index, WORKDIR / "index")
    with TestClient(APP):
        yield
    shutil.rmtree(WORKDIR, ignore_errors=True)
    record("fuzz-summary.json", {"cases": sum(OUTCOMES.values()), "by_outcome": dict(sorted(OUTCOMES.items()))})


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case) -> None:
    response = case.call_and_validate(headers=AUTH, checks=CHECKS)
    OUTCOMES[f"{case.method} {case.path} {response.status_code}"] += 1
