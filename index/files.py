"""Files written so that a crash leaves either the old file or the whole new one: fsync
before rename, checksums recorded and verified. Used by the index, the articles folder and sync.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from index.errors import IndexCorruptError


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_files(directory: Path) -> dict[str, str]:
    """fsync every file under `directory` and return relative path -> sha256."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        fsync_file(path)
        files[str(path.relative_to(directory))] = sha256(path)
    return files


def verify_files(directory: Path, files: Mapping[str, str]) -> None:
    if not files:
        raise IndexCorruptError(f"{directory} lists no files")
    for relative, expected in files.items():
        path = directory / relative
        if not path.is_file():
            raise IndexCorruptError(f"index file {path} is missing")
        if sha256(path) != expected:
            raise IndexCorruptError(f"index file {path} is corrupt (checksum mismatch)")


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data` (text as UTF-8) all at once: written to a temporary file
    beside it, fsynced, renamed over it, and the folder fsynced, so that a crash leaves the old
    file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
