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
from index.segment import SEGMENTS
from index.store import load_index
from index.manifest import VERSIONS
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
    segments = index_dir / SEGMENTS
    first_segments = {p.name for p in segments.iterdir()}

    def new_version_renamed() -> bool:  # after the rename, before CURRENT moves
        return any(p.name != first.version and not p.name.startswith(".") for p in versions.iterdir())

    def new_segment_renamed() -> bool:  # before the version that names it is written
        return any(p.name not in first_segments and not p.name.startswith(".") for p in segments.iterdir())

    def at_random() -> Callable[[], bool]:
        started, after = time.monotonic(), rng.uniform(2, 12)
        return lambda: time.monotonic() - started > after

    rng = random.Random(int(os.environ.get("QA_KILL_SEED", "11")))
    # Each stage boundary of a publish, then random moments (QA_RANDOM_KILLS of them).
    kill_points: list[tuple[str, Callable[[], Callable[[], bool]]]] = [
        ("while embedding", lambda: lambda: cache.stat().st_size > cache_size),
        ("while writing the new segment", lambda: lambda: any(p.name.startswith(".tmp-") for p in segments.iterdir())),
        ("after the segment's FAISS file is written", lambda: lambda: any(segments.glob(".tmp-*/dense.faiss"))),
        ("after the segment is renamed, before a version names it", lambda: new_segment_renamed),
        ("after the version is renamed, before CURRENT moves", lambda: new_version_renamed),
    ] + [(f"at random moment {i + 1}", at_random) for i in range(int(os.environ.get("QA_RANDOM_KILLS", "1")))]
    outcomes: dict[str, str] = {}
    expected = sorted(p.stem for p in articles.glob("*.txt"))
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
            assert sorted(served.articles) == expected
            break

    final = run_ingest(articles, settings, encoder=encoder, progress=False)
    index = load_index(index_dir)
    assert sorted(index.articles) == expected
    live = list(index.chunks.live_chunks())
    assert len({c.id for c in live}) == len(live) == index.live_chunks  # nothing duplicated
    if outcomes.get("while embedding", "").startswith("killed"):
        # Batches embedded before the kill were kept in the cache and not embedded again.
        assert final.chunks_embedded < final.chunks - first.chunks

    # Merges: killed while the merged segment is written, or after it is in place but before
    # a version names it, the version before the merge stays served with every article.
    before_merge = index.version
    merged_from = {p.name for p in segments.iterdir()}
    merge_points = [
        ("while writing the merged segment", lambda: any(p.name.startswith(".tmp-") for p in segments.iterdir())),
        ("after the merged segment is renamed", lambda: any(
            p.name not in merged_from and not p.name.startswith(".") for p in segments.iterdir())),
    ]
    for name, ready in merge_points:
        process = subprocess.Popen(
            [QA_INGEST, str(articles), "--index", str(index_dir), "--quiet", "--optimize"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        killed = _kill_when(process, ready)
        served = load_index(index_dir)
        assert sorted(served.articles) == expected and served.live_chunks == index.live_chunks
        outcomes[name] = (
            "killed: previous version served" if killed and served.version == before_merge
            else "finished first" if not killed else "killed after the swap: merged version complete"
        )
    record("kill-summary.json", outcomes)
    merged = run_ingest(articles, settings, encoder=encoder, progress=False, optimize=True)
    index = load_index(index_dir)
    assert merged.segments == 1 and sorted(index.articles) == expected
    assert index.live_chunks == len(index.chunks) == final.chunks
    for folder in (versions, segments):
        assert not any(p.name.startswith(".tmp-") for p in folder.iterdir())


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
        stroma = articles / "stroma.txt"
        stroma.write_text("The keepers of the Stroma lighthouse kept a logbook for ninety years.")
        run_ingest(articles, Settings(index_dir=index_dir), encoder=encoder, progress=False)
        stroma.unlink()
        first = run_ingest(articles, Settings(index_dir=index_dir), encoder=encoder, progress=False)
        # An added article costs only its own small segment, so fill the disk to leave less
        # than that. Its vector is in the cache already (added once before), so the disk
        # fills while the segment is written.
        stats = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 16_384))
        stroma.write_text("The keepers of the Stroma lighthouse kept a logbook for ninety years.")

        result = subprocess.run([QA_INGEST, str(articles), "--index", str(index_dir), "--quiet"],
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 1
        assert "could not write index version" in result.stderr and "bytes free" in result.stderr
        assert "previous version stays in service" in result.stderr
        assert "Traceback" not in result.stderr
        served = load_index(index_dir)  # every checksum verified
        assert served.version == first.version and len(served.articles) == 5
        for folder in (VERSIONS, SEGMENTS):
            assert not any(p.name.startswith(".tmp-") for p in (index_dir / folder).iterdir())
        record("full-disk-summary.json", {"exit": result.returncode, "message": result.stderr.strip()})
    finally:
        # Lazy: a loaded index version still holds a file open on the disk.
        subprocess.run(["umount", "--lazy", str(disk)], check=False)
