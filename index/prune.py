"""Removing what no version needs any more: the temporary folders of interrupted writes, all
but the newest versions, and the segments that no kept version names. Versions and segments
are only ever added by a write (index/store.py); this is the one place they go away."""

from __future__ import annotations

import shutil
from pathlib import Path

from index.errors import IndexCorruptError, IndexMismatchError
from index.manifest import VERSION_RE, VERSIONS, current_version_name, read_manifest
from index.segment import SEGMENTS, TMP_PREFIX


def prune(index_dir: Path, keep: int) -> None:
    """Drop leftovers of interrupted writes, all but the newest `keep` versions (never the
    current one), and every segment that no remaining version names."""
    versions = index_dir / VERSIONS
    current = current_version_name(index_dir)
    names = sorted(e.name for e in versions.iterdir() if VERSION_RE.match(e.name))
    remove_leftovers(index_dir)
    for old in names[:-keep]:
        if old != current:
            shutil.rmtree(versions / old, ignore_errors=True)
    named: set[str] = set()
    for entry in versions.iterdir():
        if VERSION_RE.match(entry.name):
            try:
                named.update(s["name"] for s in read_manifest(entry).segments)
            except (IndexCorruptError, IndexMismatchError):
                continue
    segments = index_dir / SEGMENTS
    if segments.is_dir():
        for entry in segments.iterdir():
            if not entry.name.startswith(TMP_PREFIX) and entry.name not in named:
                shutil.rmtree(entry, ignore_errors=True)


def remove_leftovers(index_dir: Path) -> None:
    """Temporary folders of interrupted writes. Call only while holding ingest_lock."""
    for folder in (index_dir / VERSIONS, index_dir / SEGMENTS):
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.startswith(TMP_PREFIX):
                    shutil.rmtree(entry, ignore_errors=True)
