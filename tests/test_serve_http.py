"""`qa-serve` as a user starts it: a real uvicorn on 127.0.0.1, asked over HTTP while
`qa-ingest` publishes new versions beside it, then stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from index.manifest import VERSIONS
from index.version import load_version_dir
from tests.conftest import REPO, free_port, record, start_qa_serve
from tests.test_service import LIGHTHOUSE_TEXT, copy_service_dirs

BIN = Path(sys.executable).parent
QUESTIONS = [
    "who argues against means-testing?",
    "What is missing from the NHS Long Term Plan?",
    "Who trimmed the lamp of the Stroma lighthouse?",
]


def http_json(
    url: str, body: dict | None = None, timeout: float = 30, token: str | None = None, method: str | None = None
) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


EXTRA_TEXT = (
    "The ferry timetable for the northern isles changes every winter.\n\n"
    "Said Captain Morag Flett: \"We sail when the swell drops below two metres, and not before.\""
)
# Each step changes the articles folder, then qa-ingest publishes a new version beside the service.
STEPS = [
    ("add an article", lambda a: (a / "stroma.txt").write_text(LIGHTHOUSE_TEXT)),
    ("add another, change the first", lambda a: ((a / "ferry.txt").write_text(EXTRA_TEXT),
                                                  (a / "stroma.txt").write_text(LIGHTHOUSE_TEXT + "\n\nIt closed in 1997."))),
    ("remove the second", lambda a: (a / "ferry.txt").unlink()),
]


def publish_beside(articles: Path, index: Path, base: str, versions: list[str]) -> None:
    """Run the STEPS, waiting after each for the service to switch to the new version."""
    env = {**os.environ, "QA_KEEP_VERSIONS": "10"}  # keep every version, to check answers against
    for _name, change in STEPS:
        change(articles)
        done = subprocess.run([str(BIN / "qa-ingest"), str(articles), "--index", str(index), "--json"],
                              capture_output=True, text=True, timeout=300, cwd=REPO, env=env, check=False)
        assert done.returncode == 0, done.stderr
        versions.append(json.loads(done.stdout)["version"])
        deadline = time.monotonic() + 15
        while http_json(f"{base}/readyz")[1]["index_version"] != versions[-1]:
            assert time.monotonic() < deadline, "service did not switch versions"
            time.sleep(0.1)


@pytest.mark.slow
def test_serve_answers_through_republishing_and_stops_cleanly(tmp_path: Path, sample_index: Path) -> None:
    articles, index = copy_service_dirs(tmp_path, sample_index)
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_qa_serve(articles, index, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        first_version = http_json(f"{base}/readyz")[1]["index_version"]
        # (status, index version, cited article ids) of every answer
        outcomes: list[tuple[int, str | None, set[str]]] = []
        stop = threading.Event()

        def client(offset: int) -> None:
            i = offset
            while not stop.is_set():
                try:
                    code, body = http_json(f"{base}/ask", {"question": QUESTIONS[i % len(QUESTIONS)]})
                except OSError as exc:
                    code, body = 0, {"detail": str(exc)}
                cited = {p["article_id"] for p in body.get("passages", [])}
                outcomes.append((code, body.get("index_version"), cited))
                i += 1

        clients = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
        for thread in clients:
            thread.start()
        versions = [first_version]
        try:
            publish_beside(articles, index, base, versions)
        finally:
            stop.set()
            for thread in clients:
                thread.join()

        failed = [o for o in outcomes if o[0] != 200]
        assert not failed, failed[:5]
        assert len(outcomes) > 20
        # Every answer comes from exactly one published version: it names one, and cites only
        # articles that version holds.
        # A run may publish twice (its change, then a merge): every version on disk counts.
        published = sorted(p.name for p in (index / VERSIONS).iterdir() if not p.name.startswith("."))
        assert set(versions) <= set(published)
        held = {v: set(load_version_dir(index / VERSIONS / v).articles) for v in published}
        assert {version for _, version, _ in outcomes} <= set(published)
        assert all(cited <= held[version] for _, version, cited in outcomes)
        # The article added (and changed) is answerable at the end; the removed one is gone.
        _, body = http_json(f"{base}/ask", {"question": QUESTIONS[2]})
        assert body["passages"][0]["article_id"] == "stroma"
        assert http_json(f"{base}/articles/ferry")[0] == 404
        record("reindex-load-summary.json", {
            "requests": len(outcomes), "failed": len(failed), "versions_published": len(versions) - 1,
            "versions_seen_in_answers": len({v for _, v, _ in outcomes}), "clients": 4,
        })
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    output = log.read_text()
    # uvicorn finishes in-flight requests and the lifespan, then re-raises SIGTERM as its exit status.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output


@pytest.mark.slow
def test_serve_refuses_bad_arguments_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run([str(BIN / "qa-serve"), "--port", "notaport"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid int value" in result.stderr
    result = subprocess.run([str(BIN / "qa-serve"), "--port", "70000", "--index", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "port" in result.stderr and "Traceback" not in result.stderr


def _serve_with_more_articles(
    tmp_path: Path, sample_index: Path, count: int
) -> tuple[Path, subprocess.Popen, str]:
    """`qa-serve` (admin token "t0ken", log in tmp_path/serve.log) on a copy of the sample
    with `count` more articles in its folder, not yet indexed: its index, process and URL."""
    from tests.test_interrupted_ingest import _write_more_articles

    articles, index = copy_service_dirs(tmp_path, sample_index)
    _write_more_articles(articles, count)
    port = free_port()
    server = start_qa_serve(articles, index, port, tmp_path / "serve.log", QA_ADMIN_TOKEN="t0ken")
    return index, server, f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_sigterm_during_an_admin_reindex_leaves_a_complete_index(tmp_path: Path, sample_index: Path) -> None:
    """SIGTERM while an ingest job is embedding: the service waits for the job, so the publish
    is either complete or never visible, and nothing half-written is left."""
    from index.store import load_index

    index, server, base = _serve_with_more_articles(tmp_path, sample_index, 40)
    log = tmp_path / "serve.log"
    try:
        code, job = http_json(f"{base}/admin/reindex", token="t0ken", method="POST")
        assert code == 202, job
        deadline = time.monotonic() + 120
        while http_json(f"{base}/admin/jobs/{job['job_id']}", token="t0ken")[1]["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=300)
    output = log.read_text()
    assert "Application shutdown complete" in output, output
    served = load_index(index)  # CURRENT points at a complete version: every checksum verified
    assert len(served.articles) in (5, 45)
    assert not any(p.name.startswith(".tmp-") for p in (index / VERSIONS).iterdir())
    record("sigterm-during-reindex.json", {"articles_served_after_shutdown": len(served.articles)})


def _ingest_workers(pid: int) -> list[int]:
    """The server's children that run ingest jobs (spawned interpreters; multiprocessing's
    resource tracker is another child, and stays)."""
    # Every thread's children: the worker is started by the job's thread, not the main one.
    children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [int(c) for c in children
            if "spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]


@pytest.mark.slow
def test_an_ingest_job_runs_outside_the_server_whose_worker_leaves_when_idle(
    tmp_path: Path, sample_index: Path
) -> None:
    articles, index = copy_service_dirs(tmp_path, sample_index)
    port, log = free_port(), tmp_path / "serve.log"
    server = start_qa_serve(articles, index, port, log, QA_ADMIN_TOKEN="t0ken", QA_INGEST_WORKER_IDLE_S="3")
    base = f"http://127.0.0.1:{port}"
    try:
        (articles / "ferry-clinic.txt").write_text(
            "The Ferry Road clinic now opens at seven for night-shift workers.\n", encoding="utf-8")
        code, job = http_json(f"{base}/admin/reindex", token="t0ken", method="POST")
        assert code == 202, job
        deadline = time.monotonic() + 180
        while (status := http_json(f"{base}/admin/jobs/{job['job_id']}", token="t0ken")[1])["status"] != "succeeded":
            assert status["status"] != "failed" and time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["result"]["added"] == 1 and status["result"]["chunks_embedded"] == 1
        assert len(_ingest_workers(server.pid)) == 1  # kept for the next job, for now
        code, answer = http_json(f"{base}/ask?q=When%20does%20the%20Ferry%20Road%20clinic%20open%3F")
        assert code == 200 and answer["passages"][0]["article_id"] == "ferry-clinic"
        # The job embedded with torch, in another process: the server never loaded it.
        assert "torch" not in Path(f"/proc/{server.pid}/maps").read_text()
        deadline = time.monotonic() + 60
        while _ingest_workers(server.pid):
            assert time.monotonic() < deadline, "the idle ingest worker did not exit"
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)


def _job_status(base: str, job_id: str) -> dict:
    return http_json(f"{base}/admin/jobs/{job_id}", token="t0ken")[1]


@pytest.mark.slow
def test_an_ingest_worker_killed_mid_job_fails_that_job_only(tmp_path: Path, sample_index: Path) -> None:
    """The worker killed during a job (the kernel's OOM killer, an operator): the job fails
    with the reason, the index stays the complete version it was, the server goes on
    answering, and the next job starts a fresh worker and publishes."""
    from index.store import load_index

    index, server, base = _serve_with_more_articles(tmp_path, sample_index, 5)
    try:
        job = http_json(f"{base}/admin/reindex", token="t0ken", method="POST")[1]
        deadline = time.monotonic() + 180
        while not (workers := _ingest_workers(server.pid)):
            assert time.monotonic() < deadline and _job_status(base, job["job_id"])["status"] != "succeeded"
            time.sleep(0.05)
        (worker,) = workers
        os.kill(worker, signal.SIGKILL)
        while (status := _job_status(base, job["job_id"]))["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["status"] == "failed" and "ended without a result" in status["error"], status
        assert len(load_index(index).articles) == 5  # the version before the job, complete
        code, answer = http_json(f"{base}/ask?q=who%20argues%20against%20means-testing%3F")
        assert code == 200 and answer["passages"]

        again = http_json(f"{base}/admin/reindex", token="t0ken", method="POST")[1]
        while (status := _job_status(base, again["job_id"]))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline + 180
            time.sleep(0.2)
        assert status["status"] == "succeeded" and status["result"]["added"] == 5, status
        assert http_json(f"{base}/readyz")[1]["index_version"] == status["result"]["version"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
