"""`scripts/serve-replicas.sh`: two real qa-serve replicas behind real nginx on 127.0.0.1,
asked without pause while a new version is published beside them and while one replica is
killed with SIGKILL (the script restarts it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from mcp import Client

from index.encoder import Encoder
from index.settings import Settings
from ingest.pipeline import run_update
from tests.conftest import REPO, free_port, record
from tests.test_serve_http import LIGHTHOUSE_TEXT, QUESTIONS, http_json
from tests.test_service import copy_service_dirs

RELOAD_S = 0.5

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (scripts/system-packages.sh)")


def _free_port_block(size: int) -> int:
    """A port with the `size` ports after it free too."""
    for _ in range(50):
        port = free_port()
        if port + size < 65536 and all(_is_free(port + i) for i in range(1, size + 1)):
            return port
    raise AssertionError("no block of free ports")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _version(url: str) -> str | None:
    try:
        code, body = http_json(f"{url}/readyz", timeout=2)
    except (OSError, ValueError):  # not listening, or nginx's own error page
        return None
    return body.get("index_version") if code == 200 else None


def _wait(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} after {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


async def _ask_over_mcp(url: str, version: str) -> None:
    async with Client(url) as client:
        for question in QUESTIONS:
            result = await client.call_tool("ask_archive", {"question": question})
            assert not result.is_error and result.structured_content["index_version"] == version


@pytest.mark.slow
def test_replicas_behind_nginx_answer_through_a_publish_and_a_killed_replica(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    articles, index = copy_service_dirs(tmp_path, sample_index)
    port = _free_port_block(2)
    base, replicas = f"http://127.0.0.1:{port}", [f"http://127.0.0.1:{port + i}" for i in (1, 2)]
    env = {**os.environ, "QA_PORT": str(port), "QA_INDEX_DIR": str(index), "QA_ARTICLES_DIR": str(articles),
           "QA_RELOAD_INTERVAL_S": str(RELOAD_S), "QA_ASK_RATE_PER_MINUTE": "0", "TMPDIR": str(tmp_path)}
    log = tmp_path / "replicas.log"
    script = subprocess.Popen(["bash", str(REPO / "scripts" / "serve-replicas.sh"), "2"], cwd=REPO, env=env,
                              stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    outcomes: list[tuple[int, str]] = []  # (status, error) of every question; 0: no HTTP answer
    stop = threading.Event()
    clients: list[threading.Thread] = []
    try:
        _wait(lambda: all(_version(url) for url in [base, *replicas]), 180, "replicas not ready")
        first = _version(base)

        def ask() -> None:
            i = 0
            while not stop.is_set():
                try:
                    code, body = http_json(f"{base}/ask", {"question": QUESTIONS[i % len(QUESTIONS)]})
                    outcomes.append((code, "" if code == 200 else str(body)))
                except (OSError, ValueError) as exc:  # refused, or an error page from nginx
                    outcomes.append((0, repr(exc)))
                i += 1

        clients += [threading.Thread(target=ask, daemon=True) for _ in range(2)]
        for thread in clients:
            thread.start()

        # A version published beside them: each replica swaps on its own.
        (articles / "stroma.txt").write_text(LIGHTHOUSE_TEXT, encoding="utf-8")
        report = run_update([articles / "stroma.txt"], Settings(index_dir=index), encoder, progress=False)
        assert report.version != first
        swap_s = _wait(lambda: all(_version(url) == report.version for url in replicas), 30, "replicas did not swap")

        # The MCP endpoint through nginx: stateless, so each of a session's requests may reach
        # either replica.
        asyncio.run(_ask_over_mcp(f"{base}/mcp", report.version))

        # One replica killed: nginx sends its requests to the other, the script restarts it,
        # and it comes back on the current version.
        pid_file = next(tmp_path.glob(f"qa-replicas.*/replica-{port + 1}.pid"), None)
        assert pid_file is not None, log.read_text()
        killed_pid = int(pid_file.read_text())
        os.kill(killed_pid, signal.SIGKILL)
        time.sleep(2)  # questions keep coming while it is down
        back_s = _wait(lambda: _version(replicas[0]) == report.version, 180, "killed replica not back")
        assert int(pid_file.read_text()) != killed_pid  # a new process
        time.sleep(1)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
        os.killpg(script.pid, signal.SIGTERM)
        script.wait(timeout=60)
    failed = [outcome for outcome in outcomes if outcome[0] != 200]
    assert not failed and len(outcomes) > 50, (failed[:5], len(outcomes), log.read_text()[-3000:])
    assert swap_s < 10, swap_s  # QA_RELOAD_INTERVAL_S plus loading one small segment
    assert "restarting it" in log.read_text()
    assert all(_version(url) is None for url in [base, *replicas])  # everything stopped
    record("replicas-summary.json", {"requests": len(outcomes), "failed": len(failed), "swap_s": round(swap_s, 2),
                                     "killed_replica_back_s": round(back_s, 2)})
