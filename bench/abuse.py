"""A bounded abuse run against a real `qa-serve` on 127.0.0.1 (issue 32): what one server's
resident memory does, and how fast a normal reader is answered meanwhile.

At once, from threads of this process:
- `--long-workers` clients each ask `--long-each` distinct 1,000-character questions;
- `--history-workers` clients send `--histories` follow-ups ("Does he trust councils with the
  money?"), each with its own 20-turn history near the limits (29,000 characters: earlier
  questions of 1,000, answers of 1,900), which also fills the search cache with distinct
  entries;
- one client sends `--oversized` follow-ups with a 10,000-character earlier turn (refused);
- one normal reader asks a short question every `--normal-every` seconds, each worded apart
  (a cache miss), and is timed (and 30 such questions before the load, for comparison).

The load's clients, refused with 503 when the server's search slots and queue are full, ask
again after its Retry-After until answered, so all the work above is done in the end; the
normal reader does not (a 503 is counted against it).

The server runs with its defaults (search slots, cache, question log in a temporary folder),
except the per-address rate limit: every client here is 127.0.0.1, so the limit would turn the
run into a test of the limiter; `QA_ASK_RATE_PER_MINUTE=0` turns it off, and what is measured
is memory and latency under the load itself. Resident memory is read from /proc/PID/status
(VmRSS every 50 ms, and VmHWM, the kernel's own peak).

    python -m bench abuse --index IDX [--articles data/articles] [--json OUT] [--publish]

Prints the figures as JSON, then the table; with --publish the table is written into its block
of docs/reliability.md (`abuse`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.common import free_port
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish

REPO = Path(__file__).resolve().parent.parent
NORMAL = [
    "who argues against means-testing?", "Who compares healthcare to having a kitchen replaced?",
    "How much have A&E visits gone up?", "What is missing from the NHS Long Term Plan?",
    "What is the Right to Provide scheme?", "What is the People Focused Group?",
    "Which countries have co-operatives running hospitals?",
]
P99_TARGET_MS = 1000  # the normal reader's p99 during the run
MEMORY_TARGET_MB = 1536  # the server's peak resident memory
WORDS = ("council budget health care tax school funding hospital housing police minister money "
         "staff trust plan reform nurses waiting lists social care pay").split()


def rss(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of `pid`, in MB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


class Client:
    """One keep-alive connection; `post` returns (status, seconds)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path: str, body: dict) -> tuple[int, float]:
        data = json.dumps(body).encode()
        started = time.perf_counter()
        self.retry_after = 1.0
        try:
            self.connection.request("POST", path, data, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            response.read()
            status = response.status
            self.retry_after = float(response.getheader("Retry-After") or 1)
        except (OSError, http.client.HTTPException, ValueError):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            status = 0  # the connection failed
        return status, time.perf_counter() - started

    def insist(self, path: str, body: dict, count: Callable[[int], None], tries: int = 120) -> int:
        """`post` again after each 503's Retry-After, as a determined client does, so that
        the work is done in the end; each answer counted."""
        for _ in range(tries):
            status = self.post(path, body)[0]
            count(status)
            if status != 503:
                return status
            time.sleep(self.retry_after)
        return 503


def long_question(worker: int, number: int) -> str:
    words = [WORDS[(worker * 7 + number * 13 + i * i) % len(WORDS)] for i in range(200)]
    return f"Question {worker}-{number}: what about " + " ".join(words)[:960] + "?"


def long_history(number: int) -> list[dict]:
    turns = []
    for turn in range(10):
        text = f"{number}.{turn} " + " ".join(WORDS[(number + turn + i) % len(WORDS)] for i in range(300))
        turns += [{"role": "user", "content": text[:1000]}, {"role": "assistant", "content": text[:1900]}]
    return turns


def start_server(index: Path, articles: Path, port: int, folder: Path) -> subprocess.Popen:
    env = {**os.environ, "QA_ASK_RATE_PER_MINUTE": "0", "QA_QUESTION_LOG_PATH": str(folder / "questions.sqlite"),
           "HF_HUB_OFFLINE": "1"}
    log = (folder / "serve.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "qa-serve"), "--index", str(index), "--articles", str(articles),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"qa-serve exited: {(folder / 'serve.log').read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/readyz")
            if json.loads(connection.getresponse().read()).get("ready"):
                return server
        except OSError:
            pass
        time.sleep(0.3)
    server.kill()
    raise SystemExit("qa-serve was not ready within 180 s")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def run(args: argparse.Namespace) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="qa-abuse-") as name:
        folder = Path(name)
        server = start_server(args.index, args.articles, port, folder)
        try:
            return _abuse(server.pid, port, args)
        finally:
            server.terminate()
            server.wait(timeout=30)


class Load:
    """The run's clients as threads against one server, and what each kind of request got."""

    KINDS = ("long", "history", "oversized", "normal")

    def __init__(self, pid: int, port: int, args: argparse.Namespace) -> None:
        self.pid, self.port, self.args = pid, port, args
        self.statuses: dict[str, Counter] = {kind: Counter() for kind in self.KINDS}
        self.normal_s: list[float] = []
        self.samples: list[float] = []
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.next_history = iter(range(args.histories))  # shared: each history is sent once

    def count(self, kind: str, status: int) -> None:
        with self.lock:
            self.statuses[kind][status] += 1

    def long_worker(self, worker: int) -> None:
        client = Client(self.port)
        for number in range(self.args.long_each):
            client.insist("/ask", {"question": long_question(worker, number)}, partial(self.count, "long"))

    def history_worker(self) -> None:
        client = Client(self.port)
        for number in self.next_history:
            body = {"question": "Does he trust councils with the money?", "history": long_history(number)}
            client.insist("/ask", body, partial(self.count, "history"))

    def oversized_worker(self) -> None:
        client = Client(self.port)
        for number in range(self.args.oversized):
            history = [{"role": "user", "content": f"{number} " + "why " * 2500}]
            body = {"question": "What else does he say?", "history": history}
            client.insist("/ask", body, partial(self.count, "oversized"))

    def normal_reader(self) -> None:
        client = Client(self.port)
        number = 0
        while not self.done.is_set():
            question = f"{NORMAL[number % len(NORMAL)]} ({number})"
            status, took = client.post("/ask", {"question": question})
            self.count("normal", status)
            if status == 200:
                self.normal_s.append(took)
            number += 1
            self.done.wait(self.args.normal_every)

    def sampler(self) -> None:
        while not self.done.is_set():
            self.samples.append(rss(self.pid)["VmRSS"])
            self.done.wait(0.05)

    def run(self) -> float:
        """Every client at once until the load's are done (or --max-s): the seconds it took."""
        args = self.args
        self.load = load = [threading.Thread(target=self.long_worker, args=(w,)) for w in range(args.long_workers)]
        load += [threading.Thread(target=self.history_worker) for _ in range(args.history_workers)]
        load += [threading.Thread(target=self.oversized_worker)]
        watchers = [threading.Thread(target=self.normal_reader), threading.Thread(target=self.sampler)]
        started = time.perf_counter()
        for thread in watchers + load:
            thread.start()
        for thread in load:
            thread.join(timeout=max(1.0, args.max_s - (time.perf_counter() - started)))
        took_s = time.perf_counter() - started
        self.done.set()
        for thread in watchers:
            thread.join()
        return took_s

    def finished(self) -> bool:
        return not any(thread.is_alive() for thread in self.load)

    def normal_ask(self) -> dict:
        normal_s = self.normal_s
        return {
            "asked": sum(self.statuses["normal"].values()),
            "answered": len(normal_s),
            "p50_ms": round(percentile(normal_s, 50) * 1000, 1) if normal_s else None,
            "p99_ms": round(percentile(normal_s, 99) * 1000, 1) if normal_s else None,
            "max_ms": round(max(normal_s) * 1000, 1) if normal_s else None,
        }


def _quiet(port: int) -> list[float]:
    """A fresh server's first questions, as any reader's, then 30 timed without load (seconds)."""
    warm = Client(port)
    for question in NORMAL:
        warm.post("/ask", {"question": question})
    return [warm.post("/ask", {"question": f"{NORMAL[n % len(NORMAL)]} (quiet {n})"})[1] for n in range(30)]


def _abuse(pid: int, port: int, args: argparse.Namespace) -> dict:
    quiet = _quiet(port)
    at_start = rss(pid)
    load = Load(pid, port, args)
    took_s = load.run()
    time.sleep(args.settle_s)
    after = rss(pid)
    metrics = _cache_metrics(port)
    return {
        "machine_cpus": len(os.sched_getaffinity(0)),
        "load_average_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "run_s": round(took_s, 1),
        "finished_within_max_s": load.finished(),
        "rss_mb_at_start": at_start["VmRSS"],
        "rss_mb_peak_sampled": max(load.samples, default=0.0),
        "rss_mb_peak_vmhwm": after["VmHWM"],
        f"rss_mb_{args.settle_s:g}s_after": after["VmRSS"],
        "requests": {kind: dict(sorted(counter.items())) for kind, counter in load.statuses.items()},
        "normal_ask_without_load": _latency(quiet),
        "normal_ask": load.normal_ask(),
        "search_cache": metrics,
    }


def _latency(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(seconds, 50) * 1000, 1), "p99_ms": round(percentile(seconds, 99) * 1000, 1)}


def _cache_metrics(port: int) -> dict[str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metrics")
    found = {}
    for line in connection.getresponse().read().decode().splitlines():
        if line.startswith("qa_search_cache_total{"):
            found[line.split('"')[1]] = float(line.split()[-1])
    return found


def table(figures: dict) -> str:
    """The run as the `abuse` block: the normal reader during the load (answered of asked, p50,
    p99) and the server's peak RSS; under it the reader without the load and the targets."""
    normal, quiet = figures["normal_ask"], figures["normal_ask_without_load"]
    peak = figures["rss_mb_peak_vmhwm"]
    headers = ["the normal reader during the run", "answered", "p50", "p99", "the server's peak RSS (VmHWM)"]
    row = ["`qa-serve` with its defaults (rate limit off)", f"{normal['answered']} of {normal['asked']}",
           _ms(normal["p50_ms"]), _ms(normal["p99_ms"]), f"{peak:.0f} MB"]
    p99_met = normal["p99_ms"] is not None and normal["p99_ms"] <= P99_TARGET_MS
    memory_met = peak <= MEMORY_TARGET_MB
    verdict = ("both met" if p99_met and memory_met else "neither met" if not (p99_met or memory_met)
               else "p99 met, memory not" if p99_met else "memory met, p99 not")
    unfinished = "" if figures["finished_within_max_s"] else " The load did not finish within --max-s."
    return markdown_table(headers, [row]) + (
        f"\n\nThe load took {figures['run_s']:g} s on {figures['machine_cpus']} CPUs (load average "
        f"{figures['load_average_at_end']} at the end); the same reader without the load: "
        f"p50 {_ms(quiet['p50_ms'])}, p99 {_ms(quiet['p99_ms'])}. Targets: p99 within "
        f"{P99_TARGET_MS / 1000:g} s, memory under {MEMORY_TARGET_MB / 1024:g} GB ({verdict}).{unfinished}")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench abuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--articles", type=Path, default=REPO / "data" / "articles")
    parser.add_argument("--long-workers", type=int, default=40)
    parser.add_argument("--long-each", type=int, default=5)
    parser.add_argument("--history-workers", type=int, default=20)
    parser.add_argument("--histories", type=int, default=700)
    parser.add_argument("--oversized", type=int, default=50)
    parser.add_argument("--normal-every", type=float, default=0.2, help="seconds between a normal reader's questions")
    parser.add_argument("--max-s", type=float, default=600, help="stop waiting for the load after this long")
    parser.add_argument("--settle-s", type=float, default=5)
    parser.add_argument("--json", type=Path)
    add_publish_arguments(parser, "abuse")
    args = parser.parse_args(argv)
    figures = run(args)
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    print_and_publish(args, "abuse", argv, [Table("abuse", table(figures), "## Under abuse: current figures")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
