"""What an ingest run reports (qa-ingest --json, the admin API's jobs), and the timer that
fills its seconds per stage."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ingest.load import Notice, Skipped


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)  # what was left out of kept articles
    chunks: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    version: str | None = None
    published: bool = False
    rebuild_reason: str | None = None
    segments: int = 0
    merges: int = 0
    bytes_written: int = 0  # new files in segments/ and versions/ (the vector cache excluded)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def to_json(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3),
            "version": self.version,
            "published": self.published,
            "chunks": self.chunks,
            "rebuild_reason": self.rebuild_reason,
            "segments": self.segments,
            "merges": self.merges,
            "bytes_written": self.bytes_written,
            "timings": self.timings,
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
            "notices": [{"source": n.source, "message": n.message} for n in self.notices],
        }


@contextlib.contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the seconds the block takes to `timings[stage]`, even when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started
