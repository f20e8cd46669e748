"""kill -9 during ingest: the previous version stays loadable and the next run completes."""

from __future__ import annotations

import os
import random
import shutil
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
from tests.conftest import SAMPLE_ARTICLES, record

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

    def new_version_renamed() -> bool:  # after the rename, before CURRENT moves
        return any(p.name != first.version and not p.name.startswith(".") for p in versions.iterdir())

    def at_random() -> Callable[[], bool]:
        started, after = time.monotonic(), rng.uniform(2, 12)
        return lambda: time.monotonic() - started > after

    rng = random.Random(int(os.environ.get("QA_KILL_SEED", "11")))
    # Each stage boundary of a publish, then random moments (QA_RANDOM_KILLS of them).
    kill_points: list[tuple[str, Callable[[], Callable[[], bool]]]] = [
        ("while embedding", lambda: lambda: cache.stat().st_size > cache_size),
        ("while writing the new version", lambda: lambda: any(p.name.startswith(".tmp-") for p in versions.iterdir())),
        ("after the FAISS file is written", lambda: lambda: any(versions.glob(".tmp-*/dense.faiss"))),
        ("after the rename, before CURRENT moves", lambda: new_version_renamed),
    ] + [(f"at random moment {i + 1}", at_random) for i in range(int(os.environ.get("QA_RANDOM_KILLS", "1")))]
    outcomes: dict[str, str] = {}
    for name, make_ready in kill_points:
        process = subprocess.Popen(
            [QA_INGEST, str(articles), "--index", str(index_dir), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        killed = _kill_when(process, make_ready())
        served = load_index(index_dir)  # verifies every checksum
        if killed and served.version == first.version:
            outcomes[name] = "killed: previous version served"
            assert len(served.articles) == 5
        else:  # it finished (or got past the pointer swap): the new version must be complete
            outcomes[name] = "killed after the swap: new version complete" if killed else "finished first"
            assert len(served.articles) == 45 and sorted(served.articles) == sorted(p.stem for p in articles.glob("*.txt"))
            break
    record("kill-summary.json", outcomes)

    final = run_ingest(articles, settings, encoder=encoder, progress=False)
    index = load_index(index_dir)
    assert len(index.articles) == 45
    assert sorted(index.articles) == sorted(p.stem for p in articles.glob("*.txt"))
    assert len({c.id for c in index.chunks}) == len(index.chunks)  # nothing duplicated
    if outcomes.get("while embedding", "").startswith("killed"):
        # Batches embedded before the kill were kept in the cache and not embedded again.
        assert final.chunks_embedded < final.chunks - first.chunks
    assert not any(p.name.startswith(".tmp-") for p in versions.iterdir())


def _mount_tmpfs(path: Path, size_bytes: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.slow
def test_full_disk_during_publish_is_a_clear_error_and_keeps_the_index(tmp_path: Path, encoder) -> None:
    disk = tmp_path / "disk"
    usage = tmp_path / "usage"
    # Measure what one version of the sample takes, then give the disk room for it and a bit more.
    run_ingest(SAMPLE_ARTICLES, Settings(index_dir=usage), encoder=encoder, progress=False)
    needed = sum(p.stat().st_size for p in usage.rglob("*") if p.is_file())
    if os.geteuid() != 0 or not _mount_tmpfs(disk, needed + 150_000):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        articles = tmp_path / "articles"
        shutil.copytree(SAMPLE_ARTICLES, articles)
        index_dir = disk / "index"
        first = run_ingest(articles, Settings(index_dir=index_dir), encoder=encoder, progress=False)
        (articles / "stroma.txt").write_text("The keepers of the Stroma lighthouse kept a logbook for ninety years.")

        result = subprocess.run([QA_INGEST, str(articles), "--index", str(index_dir), "--quiet"],
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 1
        assert "could not write index version" in result.stderr and "bytes free" in result.stderr
        assert "previous version stays in service" in result.stderr
        assert "Traceback" not in result.stderr
        served = load_index(index_dir)  # every checksum verified
        assert served.version == first.version and len(served.articles) == 5
        assert not any(p.name.startswith(".tmp-") for p in (index_dir / VERSIONS).iterdir())
        record("full-disk-summary.json", {"exit": result.returncode, "message": result.stderr.strip()})
    finally:
        # Lazy: a loaded index version still holds a file open on the disk.
        subprocess.run(["umount", "--lazy", str(disk)], check=False)
