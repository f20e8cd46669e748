"""Scenarios 3 and 4, and the ANN check: `/ask` latency and throughput over HTTP against a real
`qa-serve` (uvicorn on 127.0.0.1) at several index sizes, the serving process's resident memory,
the query embedding alone (the floor), and recall@10 of the approximate dense index against
exact search on the same vectors.

Indexes are synthetic at every size here (bench/common.py says how they are made) and cached
under $QA_BENCH_CACHE. The load generator sends a fixed number of GET /ask requests from a few
concurrent clients (threads, one keep-alive connection each), after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from bench.common import (
    CACHE, Timer, build_synthetic_index, configured_model, free_port, median, model_tag, percentile, rss_mb,
    scifact_queries,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class HttpLatency:
    system: str
    chunks: int
    dense: str
    requests: int
    clients: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests_per_s: float
    rss_mb: float
    rss_anon_mb: float
    rss_peak_mb: float
    bytes_per_chunk: float
    load_s: float


@dataclass
class AnnRecall:
    chunks: int
    dense: str
    queries: int
    recall_at_10: float
    ann_ms_p50: float
    exact_ms_p50: float


def synthetic_index(n_chunks: int, dense_index: str = "auto") -> tuple[Path, dict]:
    """A cached synthetic index of `n_chunks` chunks (built on first use)."""
    directory = CACHE / f"index-{n_chunks}-{dense_index}{model_tag()}"
    info_path = directory / "bench-info.json"
    if info_path.exists():
        return directory / "index", json.loads(info_path.read_text())
    shutil.rmtree(directory, ignore_errors=True)
    info = build_synthetic_index(directory / "index", n_chunks, dense_index=dense_index)
    info_path.write_text(json.dumps(info))
    return directory / "index", info


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 900) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def load_test(base: str, queries: list[str], requests: int, clients: int, path: str = "/ask?q=") -> tuple[list[float], int, float]:
    """Send `requests` GETs from `clients` threads; latencies in ms, errors, wall seconds."""
    import httpx

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                q = queries[i % len(queries)]
                t = time.perf_counter()
                response = client.get(path + quote(q))
                elapsed = (time.perf_counter() - t) * 1000
                with lock:
                    if response.status_code != 200:
                        errors[0] += 1
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    with Timer() as wall:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return latencies, errors[0], wall.seconds


def serve_and_measure(system: str, command: list[str], env: dict[str, str], chunks: int, dense: str,
                      queries: list[str], requests: int, clients: int, path: str = "/ask?q=") -> HttpLatency:
    port = free_port()
    command = [*command, "--port", str(port)]
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        ready_path = "/readyz" if system == "ours" else "/healthz"
        load_s = wait_ready(base + ready_path, process)
        load_test(base, queries[::-1], min(30, requests), 1, path)  # warm-up: first-call costs
        latencies, errors, wall = load_test(base, queries, requests, clients, path)
        memory = rss_mb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return HttpLatency(
        system=system, chunks=chunks, dense=dense, requests=requests, clients=clients, errors=errors,
        p50_ms=round(percentile(latencies, 50), 2), p95_ms=round(percentile(latencies, 95), 2),
        p99_ms=round(percentile(latencies, 99), 2), requests_per_s=round(requests / wall, 1),
        rss_mb=round(memory["VmRSS"], 1), rss_anon_mb=round(memory.get("RssAnon", 0), 1),
        rss_peak_mb=round(memory.get("VmHWM", 0), 1),
        bytes_per_chunk=round(memory["VmRSS"] * 2**20 / max(1, chunks), 1), load_s=round(load_s, 1),
    )


def ours_http(n_chunks: int, queries: list[str], requests: int, clients: int, torch_threads: int | None = None) -> HttpLatency:
    index_dir, info = synthetic_index(n_chunks)
    empty = CACHE / "no-articles"
    empty.mkdir(parents=True, exist_ok=True)
    env = {"QA_ASK_RATE_PER_MINUTE": "0", "HF_HUB_OFFLINE": "1"}
    if torch_threads is not None:
        env["QA_QUERY_THREADS"] = str(torch_threads)
    command = [str(ROOT / ".venv" / "bin" / "qa-serve"), "--index", str(index_dir), "--articles", str(empty)]
    return serve_and_measure("ours", command, env, info["chunks"], info["dense"]["kind"], queries, requests, clients)


def query_embedding_ms(queries: list[str], threads: int = 1, backend: str = "onnx", repeats: int = 200) -> float:
    """Median time of the model encoding one question: what /ask cannot go below."""
    from index.dense import set_query_threads
    from index.encoder import Encoder

    set_query_threads(threads)
    encoder = Encoder(configured_model(), query_backend=backend, threads=threads)
    for q in queries[:10]:
        encoder.encode_query(q)
    times = []
    for i in range(repeats):
        with Timer() as t:
            encoder.encode_query(queries[i % len(queries)])
        times.append(t.seconds * 1000)
    set_query_threads(len(os.sched_getaffinity(0)))
    return round(median(times), 2)


def ann_recall(n_chunks: int, query_vectors: np.ndarray, k: int = 10) -> AnnRecall:
    """recall@k of the served dense index against exact inner-product search on vectors.npy."""
    import faiss

    from index.store import load_index

    from index.dense import set_query_threads

    index_dir, info = synthetic_index(n_chunks)
    set_query_threads(1)  # as the server does (after building: building uses every core)
    version = load_index(index_dir)
    version.dense.set_search_params()  # the default query-time effort, as Searcher sets it
    vectors = np.concatenate([segment.vectors() for segment in version.segments.values()])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    hits, ann_times, exact_times = 0, [], []
    for q in query_vectors:
        with Timer() as t:
            ids, _ = version.dense.search(q, k)
        ann_times.append(t.seconds * 1000)
        with Timer() as t:
            _, truth = exact.search(q.reshape(1, -1), k)
        exact_times.append(t.seconds * 1000)
        hits += len(set(ids.tolist()) & set(truth[0].tolist()))
    set_query_threads(len(os.sched_getaffinity(0)))
    return AnnRecall(chunks=info["chunks"], dense=version.dense.kind, queries=len(query_vectors),
                     recall_at_10=round(hits / (k * len(query_vectors)), 4),
                     ann_ms_p50=round(median(ann_times), 3), exact_ms_p50=round(median(exact_times), 3))


def encode_queries(queries: list[str]) -> np.ndarray:
    path = CACHE / f"query-vectors-{len(queries)}{model_tag()}.npy"
    if path.exists():
        return np.load(path)
    from index.encoder import Encoder

    vectors = Encoder(configured_model()).encode(queries)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    queries = scifact_queries()
    out: dict[str, list] = {"recall": [], "http": []}
    qv = encode_queries(queries)
    for size in [int(s) for s in args.sizes.split(",")]:
        recall = ann_recall(size, qv)
        print(json.dumps(asdict(recall)), flush=True)
        out["recall"].append(asdict(recall))
        result = ours_http(size, queries, args.requests, args.clients, args.torch_threads)
        print(json.dumps(asdict(result)), flush=True)
        out["http"].append(asdict(result))
    out["query_embedding_ms"] = query_embedding_ms(queries, threads=args.torch_threads or 1)
    print(json.dumps({"query_embedding_ms": out["query_embedding_ms"]}))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
