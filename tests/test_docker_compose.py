"""docker-compose.yml and the Dockerfile, checked without a Docker engine: `docker-compose config`
(Debian's docker-compose 1.29) validates and resolves the file."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed (scripts/test.sh installs it)")


def compose_config(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMPOSE, "config"], cwd=project, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


def test_compose_file_is_valid_and_shares_the_index_between_ingest_and_api() -> None:
    result = compose_config(REPO)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    api, ingest = config["services"]["api"], config["services"]["ingest"]
    assert api["depends_on"]["ingest"]["condition"] == "service_completed_successfully"
    assert ingest["command"][0] == "qa-ingest" and api["command"][0] == "qa-serve"
    assert "index:/data/index:rw" in api["volumes"] and "index:/data/index:rw" in ingest["volumes"]
    assert any(v.endswith("data/articles:/data/articles:rw") for v in api["volumes"])
    assert api["ports"] == ["127.0.0.1:8000:8000/tcp"]
    assert "index" in config["volumes"]
    assert api["environment"]["QA_ADMIN_TOKEN"] == ""  # unset: admin routes off (see ServiceSettings)
    assert api["environment"]["QA_LLM_URL"] == ""  # unset: no composed answers
    # The language model starts only with `--profile llm`, and runs our qa-llm.
    llm = config["services"]["llm"]
    assert llm["profiles"] == ["llm"] and not api.get("profiles") and not ingest.get("profiles")
    assert llm["command"][0] == "qa-llm" and "8090" in llm["command"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "qa-llm" in scripts


def test_dockerfile_installs_cpu_torch_first_and_runs_our_commands() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    torch = dockerfile.index("torch==2.13.0")
    assert "download.pytorch.org/whl/cpu" in dockerfile
    assert torch < dockerfile.index("pip install '.[llm]'")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert re.search(r'CMD \["(qa-[a-z]+)"\]', dockerfile).group(1) in scripts
    for copied in re.findall(r"^COPY (?:--\S+ )?(\S+)", dockerfile, re.M):
        assert (REPO / copied).exists(), f"Dockerfile copies {copied}, which is not in the repository"


def test_a_broken_compose_file_is_rejected(tmp_path: Path) -> None:
    broken = (REPO / "docker-compose.yml").read_text().replace("condition: service_completed_successfully",
                                                              "condition: when_it_feels_like_it")
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = compose_config(tmp_path)
    assert result.returncode != 0 and "condition" in result.stderr


def test_replicas_profile_serves_the_shared_index_read_only_behind_nginx() -> None:
    result = compose_config(REPO)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    replica, balancer = services["replica"], services["balancer"]
    assert replica["profiles"] == balancer["profiles"] == ["replicas"]
    assert replica["command"][0] == "qa-serve" and "index:/data/index:ro" in replica["volumes"]
    assert "QA_ADMIN_TOKEN" not in replica["environment"]  # replicas only serve; the ingest job publishes
    assert replica["depends_on"]["ingest"]["condition"] == "service_completed_successfully"
    (conf,) = [v.split(":")[0] for v in balancer["volumes"] if v.endswith("default.conf:ro")]
    text = Path(conf).read_text()
    assert "server replica:8000" in text and "proxy_next_upstream error" in text
    # The replicas take the reader's address from X-Forwarded-For, which nginx sets, and only
    # when it comes from the balancer's own fixed address.
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for" in text
    assert replica["environment"]["QA_TRUSTED_PROXIES"] == balancer["networks"]["edge"]["ipv4_address"]
