"""The HTTP edge against hostile clients (issue 32): a real `qa-serve` on 127.0.0.1, spoken to
over raw sockets where a well-behaved client library would not send what an attacker does,
and the repository's nginx config (deploy/nginx-replicas.conf) run in front of it."""

from __future__ import annotations

import http.client
import json
import selectors
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, record, start_qa_serve
from tests.test_service import copy_service_dirs

pytestmark = pytest.mark.slow  # every test here talks to a qa-serve subprocess: not the fast tier

BODY_TIMEOUT_S = 1.0
SLOTS, QUEUE = 2, 2  # searches at once, and waiting, in the server below
LONG_QUESTION = ("who argues against means-testing and what do the councils say about the money " * 13)[:990]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[tuple[int, Path]]:
    """qa-serve as a user starts it, with small limits: its port and its log."""
    root = tmp_path_factory.mktemp("edge")
    articles, index = copy_service_dirs(root, sample_index)
    port, log = free_port(), root / "serve.log"
    process = start_qa_serve(
        articles, index, port, log, QA_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        QA_MAX_CONCURRENT_SEARCHES=str(SLOTS), QA_SEARCH_QUEUE=str(QUEUE), QA_SEARCH_QUEUE_WAIT_S="0.2",
    )
    yield port, log
    process.terminate()
    process.wait(timeout=60)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _raw(port: int, request: bytes) -> bytes:
    """Send `request` on a new connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _get(port: int, target: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _metrics(port: int) -> tuple[bytes, set[str]]:
    """/metrics, and its series (name and labels, without values)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read()
    connection.close()
    series = {line.rsplit(" ", 1)[0] for line in text.decode().splitlines() if line and not line.startswith("#")}
    return text, series


def _junk(port: int, i: int) -> None:
    """One request with a method and a path no client should send, in four shapes: an unknown
    method at a route, at a route with a parameter and at no route, and GET at no route."""
    method = f"JUNK{i:05d}{'X' * 200}"
    request = [f"{method} /ask", f"{method} /articles/a{i}", f"{method} /junk/{i}?n={i}", f"GET /junk/{i}"][i % 4]
    _raw(port, f"{request} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


@pytest.mark.slow
def test_metrics_keep_their_size_through_1000_junk_methods_and_paths(server: tuple[int, Path]) -> None:
    port, _log = server
    for i in range(4):  # each shape once, and a scrape, so that their series exist before the count
        _junk(port, 100_000 + i)
    _metrics(port)
    before, series_before = _metrics(port)
    for i in range(1000):
        _junk(port, i)
    after, series_after = _metrics(port)
    assert series_after == series_before
    assert abs(len(after) - len(before)) < 0.02 * len(before)  # only the counts' digits change
    assert b'method="other",route="unmatched",status="404"' in after
    assert b'method="other",route="/ask",status="405"' in after
    assert b"JUNK" not in after and b"/junk" not in after
    record("edge-metrics.json", {"junk_requests": 1000, "bytes_before": len(before), "bytes_after": len(after),
                                 "series": len(series_after)})


@pytest.mark.parametrize("name", ["article", "speaker"])
def test_repeated_query_parameters_get_a_422_not_a_500(server: tuple[int, Path], name: str) -> None:
    port, _log = server
    repeated = "&".join([f"{name}=x"] * 101)
    answer = _raw(port, f"GET /ask?q=who&{repeated} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert _status(answer) == 422, answer[:300]
    assert b"at most 100 items" in answer
    code, body = _get(port, "/ask?q=who&" + "&".join([f"{name}=x"] * 100))
    assert code == 200 and body["abstained"]  # 100 is allowed: nothing matches an article or speaker "x"


def _chunked(size: int) -> Iterator[bytes]:
    for _ in range(size // 65536 + 1):
        yield b" " * 65536


@pytest.mark.parametrize("path", ["/ask", "/feedback", "/mcp"])
def test_a_chunked_body_over_the_limit_gets_a_413(server: tuple[int, Path], path: str) -> None:
    port, _log = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, body=_chunked(3_000_000), encode_chunked=True,
                       headers={"content-type": "application/json", "accept": "application/json, text/event-stream"})
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 413, body
    assert body["detail"] == "the request body is larger than 2000000 bytes"


def _until_closed(port: int, openings: list[bytes], limit_s: float) -> list[tuple[float, bytes]]:
    """Open a connection for each of `openings`, send it and nothing more, then wait: for each,
    the seconds until the server closed it (inf if it had not within `limit_s`) and what it said."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in openings]
    for sock, opening in zip(socks, openings, strict=True):
        sock.sendall(opening)
    started = time.monotonic()
    said = {sock: b"" for sock in socks}
    closed: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while len(closed) < len(socks) and time.monotonic() - started < limit_s:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                said[sock] += chunk
                if not chunk:
                    closed[sock] = time.monotonic() - started
                    selector.unregister(sock)
    for sock in socks:
        sock.close()
    return [(closed.get(sock, float("inf")), said[sock]) for sock in socks]


HALF_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
HALF_BODY = b'POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"quest'
HALF_CHUNKED = (b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Transfer-Encoding: chunked\r\n\r\n7\r\n{"quest\r\n')


def test_a_stalled_body_gets_a_408_and_its_connection_closed(server: tuple[int, Path]) -> None:
    port, _log = server
    results = _until_closed(port, [HALF_BODY] * 25 + [HALF_CHUNKED] * 25, limit_s=BODY_TIMEOUT_S + 5)
    assert max(seconds for seconds, _ in results) < BODY_TIMEOUT_S + 2
    assert all(said.startswith(b"HTTP/1.1 408 ") and b"stopped arriving" in said for _, said in results)
    record("edge-stalled-body.json", {"connections": len(results), "body_timeout_s": BODY_TIMEOUT_S,
                                      "closed_after_s_max": round(max(s for s, _ in results), 2)})


def _nginx_config(run_dir: Path, port: int, upstream: int) -> Path:
    """deploy/nginx-replicas.conf as compose mounts it (a server block of the http context),
    listening on 127.0.0.1:`port` and sending to the qa-serve on `upstream`."""
    server_block = (REPO / "deploy" / "nginx-replicas.conf").read_text()
    assert "server replica:8000" in server_block and "listen 80;" in server_block
    server_block = server_block.replace("server replica:8000", f"server 127.0.0.1:{upstream}")
    server_block = server_block.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = " ".join(f"{kind}_temp_path {run_dir}/{kind};" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
    config = run_dir / "nginx.conf"
    config.write_text(
        f"daemon off; worker_processes 1; pid {run_dir}/nginx.pid; error_log stderr warn;\n"
        f"events {{ worker_connections 512; }}\n"
        f"http {{ access_log off; client_body_temp_path {run_dir}/body; {temp}\n{server_block}\n}}\n"
    )
    return config


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (scripts/system-packages.sh)")
def test_nginx_in_front_closes_half_sent_requests(server: tuple[int, Path], tmp_path: Path) -> None:
    """uvicorn has no timeout for a request's headers (Kludex/uvicorn#157), so half-sent
    headers to qa-serve itself stay open; the proxy the README puts in front closes them."""
    upstream, _log = server
    port = free_port()
    nginx = subprocess.Popen(["nginx", "-e", "stderr", "-c", str(_nginx_config(tmp_path, port, upstream)),
                              "-p", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _get(port, "/readyz")[0] == 200  # the rendered config serves
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, nginx.stderr.read()
                time.sleep(0.1)
        results = _until_closed(port, [HALF_HEADERS] * 25 + [HALF_BODY] * 25, limit_s=20)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
    closed_after = [seconds for seconds, _ in results]
    assert max(closed_after) < 10 + 3, closed_after  # client_header_timeout, client_body_timeout 10s
    record("edge-nginx-half-sent.json", {"connections": len(results),
                                         "closed_after_s": [round(min(closed_after), 1), round(max(closed_after), 1)]})


def test_the_access_log_keeps_no_question_text(server: tuple[int, Path]) -> None:
    port, log = server
    question = "who kept the zebrafinch lighthouse lamp trimmed"
    code, _ = _get(port, "/ask?" + urllib.parse.urlencode({"q": question, "article": "zebrafinch-article"}))
    assert code == 200
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/ask", body=json.dumps({"question": question}),
                       headers={"content-type": "application/json"})
    assert connection.getresponse().status == 200
    connection.close()
    time.sleep(0.2)
    lines = log.read_text().splitlines()
    assert not [line for line in lines if "zebrafinch" in line]
    # What is logged: the reader's address and port, the method, the path without its query.
    assert [line for line in lines if "127.0.0.1:" in line and '"GET /ask HTTP/1.1" 200' in line]


def _ask(port: int, question: str, results: list[tuple[int, str | None, dict]], start: threading.Barrier) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start.wait()
    connection.request("POST", "/ask", body=json.dumps({"question": question}),
                       headers={"content-type": "application/json"})
    response = connection.getresponse()
    results.append((response.status, response.getheader("retry-after"), json.loads(response.read())))
    connection.close()


def test_a_burst_beyond_the_search_slots_gets_503_with_retry_after(server: tuple[int, Path]) -> None:
    port, _log = server
    clients = 24
    results: list[tuple[int, str | None, dict]] = []
    start = threading.Barrier(clients)
    threads = [threading.Thread(target=_ask, args=(port, f"{LONG_QUESTION} {i}", results, start))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = Counter(code for code, _, _ in results)
    assert set(statuses) == {200, 503}, statuses
    assert statuses[200] >= 1 and statuses[503] >= 1, statuses
    refused = [(after, body) for code, after, body in results if code == 503]
    assert all(after == "1" and "too many questions at once" in body["detail"] for after, body in refused)
    assert _get(port, "/ask?q=who+argues+against+means-testing")[0] == 200  # the slots are given back
    metrics, _ = _metrics(port)
    assert f"qa_searches_refused_total {float(statuses[503])}".encode() in metrics
    # Documented, so clients (and the fuzz test's status check) know of it.
    _code, schema = _get(port, "/openapi.json")
    busy = schema["paths"]["/ask"]["post"]["responses"]["503"]
    assert "Retry-After" in busy["headers"]
    record("edge-burst.json", {"clients": clients, "slots": SLOTS, "queue": QUEUE, "statuses": dict(statuses)})
