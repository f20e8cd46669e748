"""kill -9 during ingest: the previous version stays loadable and the next run completes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from index.settings import Settings
from index.store import VERSIONS, load_index
from ingest.pipeline import run_ingest
from tests.conftest import SAMPLE_ARTICLES

QA_INGEST = str(Path(sys.executable).parent / "qa-ingest")


def _write_more_articles(folder: Path, count: int) -> None:
    """Distinct articles made of real corpus paragraphs in varying order."""
    paragraphs = [
        p.strip()
        for f in sorted(SAMPLE_ARTICLES.glob("*.txt"))
        for p in f.read_text(encoding="utf-8").split("\n")
        if len(p.split()) > 25
    ]
    rng = random.Random(7)
    for i in range(count):
        chosen = rng.sample(paragraphs, 6)
        folder.joinpath(f"extra-{i:03d}.txt").write_text(
            f"Digest number {i}.\n\n" + "\n\n".join(chosen), encoding="utf-8"
        )


def _kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> bool:
    """SIGKILL the process once `ready()` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    process.kill()
    raise AssertionError("ingest neither finished nor reached the kill point")


@pytest.mark.slow
def test_kill_at_any_stage_keeps_the_served_version(tmp_path: Path, encoder) -> None:
    articles = tmp_path / "articles"
    index_dir = tmp_path / "index"
    articles.mkdir()
    for source in SAMPLE_ARTICLES.iterdir():
        articles.joinpath(source.name).write_bytes(source.read_bytes())
    settings = Settings(index_dir=index_dir)
    first = run_ingest(articles, settings, encoder=encoder, progress=False)
    _write_more_articles(articles, 40)

    cache = index_dir / "cache" / "vectors.sqlite"
    cache_size = cache.stat().st_size
    versions = index_dir / VERSIONS
    kill_points = {
        "while embedding": lambda: cache.stat().st_size > cache_size,
        "while writing the new version": lambda: any(p.name.startswith(".tmp-") for p in versions.iterdir()),
        "after the FAISS file is written": lambda: any(versions.glob(".tmp-*/dense.faiss")),
        "at a random moment": (lambda t0=time.monotonic(), at=random.uniform(3, 12): time.monotonic() - t0 > at),
    }
    outcomes = {}
    for name, ready in kill_points.items():
        process = subprocess.Popen(
            [QA_INGEST, str(articles), "--index", str(index_dir), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        killed = _kill_when(process, ready)
        served = load_index(index_dir)  # verifies every checksum
        if killed:
            outcomes[name] = "killed"
            assert served.version == first.version, name
            assert len(served.articles) == 5
        else:  # it finished before the kill point: then the new version must be complete
            outcomes[name] = "finished"
            assert len(served.articles) == 45
            break

    final = run_ingest(articles, settings, encoder=encoder, progress=False)
    index = load_index(index_dir)
    assert len(index.articles) == 45
    assert sorted(index.articles) == sorted(p.stem for p in articles.glob("*.txt"))
    assert len({c.id for c in index.chunks}) == len(index.chunks)  # nothing duplicated
    if outcomes.get("while embedding") == "killed":
        # Batches embedded before the kill were kept in the cache and not embedded again.
        assert final.chunks_embedded < final.chunks - first.chunks
    assert not any(p.name.startswith(".tmp-") for p in versions.iterdir())
