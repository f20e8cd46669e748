"""Behind a proxy: the reader's address from X-Forwarded-For, only when a trusted proxy sent
it. A real qa-serve behind real nginx (`scripts/serve-replicas.sh 1`: the replica trusts
nginx's 127.0.0.1); readers connect from their own loopback addresses, and one client goes
straight to the replica from 127.0.0.3 with forged headers."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_replicas import _free_port_block, _version, _wait
from tests.test_service import MEANS_TESTING, copy_service_dirs

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (scripts/system-packages.sh)")
BURST = 2  # questions a client may send at once; the rate (1 a minute) refills nothing here


def _ask(port: int, source: str, forwarded: str | None = None) -> int:
    """POST /ask to 127.0.0.1:`port` from the address `source`; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    headers = {"content-type": "application/json"} | ({"X-Forwarded-For": forwarded} if forwarded else {})
    try:
        connection.request("POST", "/ask", body=json.dumps({"question": MEANS_TESTING}), headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.slow
def test_readers_behind_nginx_are_told_apart_and_forged_headers_change_nothing(
    tmp_path: Path, sample_index: Path
) -> None:
    articles, index = copy_service_dirs(tmp_path, sample_index)
    port = _free_port_block(1)
    replica = port + 1
    env = {**os.environ, "QA_PORT": str(port), "QA_INDEX_DIR": str(index), "QA_ARTICLES_DIR": str(articles),
           "QA_ASK_RATE_PER_MINUTE": "1", "QA_ASK_BURST": str(BURST), "TMPDIR": str(tmp_path)}
    log = tmp_path / "serve.log"
    script = subprocess.Popen(["bash", str(REPO / "scripts" / "serve-replicas.sh"), "1"], cwd=REPO, env=env,
                              stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _version(f"http://127.0.0.1:{port}") is not None, 180, "replica not ready")
        # Two readers through nginx: each has a limit of their own.
        reader_a = [_ask(port, "127.0.0.10") for _ in range(BURST + 1)]
        reader_b = [_ask(port, "127.0.0.11") for _ in range(BURST)]
        # A reader cannot take on another's address, nor shed their own, by sending the header:
        # nginx appends the address it saw, and that right-most one is what counts.
        reader_a_forging = _ask(port, "127.0.0.10", forwarded="198.51.100.7")
        reader_c_forging_b = _ask(port, "127.0.0.12", forwarded="127.0.0.11")
        # Straight to the replica, from 127.0.0.3 (not a trusted proxy): the header is ignored,
        # whatever address it names, so new names do not buy new questions.
        direct = [_ask(replica, "127.0.0.3", forwarded=f"203.0.113.{i}") for i in range(BURST + 1)]
    finally:
        os.killpg(script.pid, signal.SIGTERM)
        script.wait(timeout=60)
    text = log.read_text()
    assert reader_a == [200] * BURST + [429], text[-3000:]
    assert reader_b == [200] * BURST
    assert reader_a_forging == 429 and reader_c_forging_b == 200
    assert direct == [200] * BURST + [429]
    # The access log names the readers, not the proxy, and no forged address.
    asked = [line for line in text.splitlines() if '"POST /ask HTTP/1.1"' in line]
    assert sum("127.0.0.10:0 - " in line for line in asked) == BURST + 2, asked
    assert sum("127.0.0.11:0 - " in line for line in asked) == BURST
    assert sum("127.0.0.12:0 - " in line for line in asked) == 1
    assert sum(" 127.0.0.3:" in line for line in asked) == BURST + 1  # the direct client, with its port
    assert not any(s in line for line in asked for s in (" 127.0.0.1:", "198.51.100.", "203.0.113."))
