"""Shared pieces of the performance scenarios (`python -m bench perf` and others): machine
facts, timing statistics, resident memory, and the synthetic collections used at sizes too
large to embed.

Synthetic data, and why it looks like this:
- Text: articles of three passages, each passage ~550 characters (about the 128 word pieces
  our chunker aims at) made of real SciFact sentences drawn at random, so BM25 sees real
  vocabulary and posting-list lengths.
- Vectors: SciFact passages embedded once with the real model ("seeds", cached), and each
  synthetic vector = normalise(a * seed_i + b * seed_j + noise). Uniform random vectors
  would have no neighbourhood structure at all, which makes ANN recall meaningless; mixtures
  of real embeddings keep the clustered shape of real data.
- Questions: the SciFact test claims, embedded by the model at query time like any question.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import random
import re
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCIFACT = Path(os.environ.get("QA_BENCH_SCIFACT", Path(__file__).resolve().parents[2] / "shared" / "bench" / "scifact"))
CACHE = Path(os.environ.get("QA_BENCH_CACHE", "/tmp/qa-bench-cache"))
PASSAGES_PER_ARTICLE = 3
PASSAGE_CHARS = 550
SEEDS = int(os.environ.get("QA_BENCH_SEEDS", "2000"))


def configured_model() -> str:
    """The embedding model the benchmarks measure: the one the service is configured with
    (QA_MODEL, default all-MiniLM-L6-v2), so that what is embedded here and what `qa-serve`
    loads agree."""
    from index.settings import Settings

    return Settings().model


def model_tag() -> str:
    """A suffix for cached files made with the model's vectors: none for the default model
    (the caches keep their names), the model's name for another."""
    from index.settings import DEFAULT_MODEL

    model = configured_model()
    return "" if model == DEFAULT_MODEL else "-" + re.sub(r"[^A-Za-z0-9.]+", "_", model)


@dataclass
class Machine:
    cpus: int
    memory_gb: float
    cpu_model: str
    python: str
    load_at_start: str

    @classmethod
    def describe(cls) -> Machine:
        model = "unknown"
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return cls(
            cpus=len(os.sched_getaffinity(0)),
            memory_gb=round(pages / 2**30, 1),
            cpu_model=model,
            python=platform.python_version(),
            load_at_start=" ".join(f"{x:.2f}" for x in os.getloadavg()),
        )


def run_sizes(sizes: str, measure: Callable[[int], Any], json_path: Path | None) -> int:
    """`measure(n)` (a dataclass) for each of the comma-separated `sizes`: each printed as a
    JSON line as it is done, all written to `json_path` at the end."""
    results = []
    for n in [int(x) for x in sizes.split(",")]:
        results.append(asdict(measure(n)))
        print(json.dumps(results[-1]), flush=True)
    if json_path:
        json_path.write_text(json.dumps(results, indent=2))
    return 0


def free_port() -> int:
    """A free port below the kernel's ephemeral range, for a server started later. A port from
    that range (what binding port 0 gives) can be handed to a client polling it before the server
    listens as its own source port: a TCP connection to itself, which reads back its own request
    ("BadStatusLine: GET /readyz HTTP/1.1") and keeps the port from the server."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(max(1024, low - 10_000), low - 16)  # room for a block after it
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`."""
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q / 100 * len(ordered))))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process from /proc: total, anonymous and file-backed, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values


def read_jsonl(path: Path | str) -> list[Any]:
    """The JSON value of each non-blank line of a `.jsonl` file."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def scifact_docs() -> list[dict[str, str]]:
    return read_jsonl(SCIFACT / "corpus.jsonl")


def scifact_queries(limit: int | None = None) -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as handle:
        queries = [json.loads(line)["text"] for line in handle if line.strip()]
    return queries[:limit] if limit else queries


def _sentences() -> list[str]:
    sentences = []
    for doc in scifact_docs():
        for sentence in re.split(r"(?<=[.!?])\s+", doc["text"]):
            if 20 <= len(sentence) <= 400:
                sentences.append(sentence)
    return sentences


def synthetic_articles(n_articles: int, seed: int = 0) -> Iterator[tuple[str, str, str, list[tuple[int, int]]]]:
    """(id, title, text, passage offsets) for `n_articles` synthetic articles."""
    sentences = _sentences()
    rng = random.Random(seed)
    for i in range(n_articles):
        passages = []
        for _ in range(PASSAGES_PER_ARTICLE):
            parts: list[str] = []
            while sum(len(p) + 1 for p in parts) < PASSAGE_CHARS:
                parts.append(rng.choice(sentences))
            passages.append(" ".join(parts))
        text = ""
        offsets = []
        for passage in passages:
            if text:
                text += "\n\n"
            offsets.append((len(text), len(text) + len(passage)))
            text += passage
        yield f"syn{seed:02d}-{i:07d}", passages[0][:60], text, offsets


def seed_vectors(encoder=None) -> np.ndarray:
    """Real embeddings of SciFact passages (cached): the material synthetic vectors mix."""
    path = CACHE / f"seeds-{SEEDS}{model_tag()}.npy"
    if path.exists():
        return np.load(path)
    if encoder is None:
        from index.encoder import Encoder

        encoder = Encoder(configured_model())
    docs = scifact_docs()
    rng = random.Random(1)
    texts = [d["title"] + " " + d["text"][:PASSAGE_CHARS] for d in rng.sample(docs, SEEDS)]
    vectors = encoder.encode(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def synthetic_vectors(n: int, seeds: np.ndarray, seed: int = 0) -> np.ndarray:
    """`n` unit vectors mixing two seeds plus noise (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, seeds.shape[1]), dtype=np.float32)
    step = 100_000
    for lo in range(0, n, step):
        m = min(step, n - lo)
        a = seeds[rng.integers(0, len(seeds), m)]
        b = seeds[rng.integers(0, len(seeds), m)]
        wa = rng.uniform(0.6, 1.0, (m, 1)).astype(np.float32)
        wb = rng.uniform(0.0, 0.5, (m, 1)).astype(np.float32)
        noise = rng.standard_normal((m, seeds.shape[1]), dtype=np.float32) * (0.35 / np.sqrt(seeds.shape[1]))
        block = wa * a + wb * b + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[lo : lo + m] = block
    return out


def write_jsonl_articles(path: Path, n_articles: int, seed: int = 0) -> None:
    """The synthetic articles as one `.jsonl` article file (a format qa-ingest reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for article_id, title, text, _ in synthetic_articles(n_articles, seed):
            handle.write(json.dumps({"id": article_id, "title": title, "text": text}) + "\n")


# Articles per publish when building a synthetic index: a million articles published at once
# needed more than this machine's 24 GB (every article, chunk, vector and BM25 token list in
# memory together); a larger archive is then several segments, as one grown over time is.
BATCH_ARTICLES = 250_000


def build_synthetic_index(index_dir: Path, n_chunks: int, *, dense_index: str = "auto", articles_dir: Path | None = None) -> dict:
    """Publish a synthetic index of `n_chunks` chunks (no embedding) with the real store code:
    the same files, checksums, BM25 and FAISS building as qa-ingest, one segment per
    BATCH_ARTICLES articles. With `articles_dir`, the articles are also written there as
    `.jsonl` files, with the content hashes qa-ingest's loader gives them, so a later
    qa-ingest run sees them as unchanged."""
    from index import store
    from index.records import Chunk
    from index.segment import SEGMENTS, read_segment_info
    from index.settings import Settings
    from ingest.chunk import sha256
    from ingest.load import make_article
    from ingest.pipeline import chunking_params, dense_options

    settings = Settings(index_dir=index_dir, dense_index=dense_index)
    n_articles = -(-n_chunks // PASSAGES_PER_ARTICLE)
    generated = synthetic_articles(n_articles)
    seeds = seed_vectors()
    publish_s, total_chunks, manifest = 0.0, 0, None
    for batch, first in enumerate(range(0, n_articles, BATCH_ARTICLES)):
        articles, chunks = [], []
        for article_id, title, text, offsets in itertools.islice(generated, BATCH_ARTICLES):
            article = make_article(article_id, text, {"title": title})
            articles.append(article)
            for start, end in offsets:
                piece = text[start:end]
                chunks.append(Chunk(id=sha256(f"{article_id}\0{start}\0{piece}")[:24], article_id=article_id,
                                    text=piece, start=start, end=end, section="body", speaker=None,
                                    text_hash=sha256(piece)))
        chunks = chunks[: n_chunks - total_chunks]
        total_chunks += len(chunks)
        if articles_dir is not None:
            articles_dir.mkdir(parents=True, exist_ok=True)
            # Files of 5,000 articles (~9 MB): qa-ingest skips files over QA_MAX_ARTICLE_BYTES (20 MB).
            for lo in range(0, len(articles), 5000):
                with (articles_dir / f"synthetic-{(first + lo) // 5000:04d}.jsonl").open("w", encoding="utf-8") as handle:
                    for article in articles[lo : lo + 5000]:
                        handle.write(json.dumps({"id": article.id, "title": article.title, "text": article.text}) + "\n")
        vectors = synthetic_vectors(len(chunks), seeds, seed=batch)
        articles.sort(key=lambda a: a.id)
        with Timer() as timer, store.ingest_lock(index_dir):
            manifest = store.publish(index_dir, base=store.open_for_update(index_dir),
                                     new=store.NewArticles(articles, chunks, vectors),
                                     model=settings.model, chunking=chunking_params(settings), keep_versions=1,
                                     dense=dense_options(settings))
        publish_s += timer.seconds
        del articles, chunks, vectors
    info = read_segment_info(index_dir / SEGMENTS / manifest.segments[0]["name"])
    return {"chunks": total_chunks, "articles": n_articles, "publish_s": publish_s, "dense": info.dense,
            "segments": len(manifest.segments)}
