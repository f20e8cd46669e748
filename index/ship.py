"""Shipping a version to another index directory (another machine's disk, a shared
filesystem), in the order that keeps every reader consistent:

1. copy each segment the version names that the destination lacks (segments are immutable:
   one already there is the same), each under a temporary name, then renamed;
2. copy the version directory the same way;
3. load and verify it there (every checksum, every count), as a replica would;
4. copy the source's calibration (`calibration.json`, qa-calibrate), when it has one and the
   destination's differs, so that the replica's servers are as sure as the source's;
5. only then move the destination's CURRENT, atomically (servers read the calibration when
   they load the new version);
6. copy the question path the source's ingest exported (`cache/query-model`), when the
   destination has none or another (the model changed), so that its servers need not export
   it (and load torch) to start.

A reader of the destination sees the old version or the complete new one, never a part; a
copy killed at any step leaves CURRENT where it was, and the next run picks up from there.

`qa-ship SOURCE_INDEX DEST_INDEX [--version V]`
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from index import store
from index.cli import run_cli
from index.confidence import CALIBRATION_FILE
from index.errors import IndexNotFoundError, QAError
from index.files import fsync_dir, fsync_file
from index.manifest import VERSIONS, current_version_name, point_current, read_manifest
from index.prune import prune
from index.query_model import IN_INDEX, META_FILE
from index.segment import SEGMENTS, TMP_PREFIX
from index.version import load_version_dir


@dataclass
class ShipReport:
    version: str
    segments_copied: list[str]
    segments_present: list[str]
    bytes_copied: int


def ship_version(source: Path, dest: Path, version: str | None = None, keep_versions: int = 3) -> ShipReport:
    """Copy `version` (default: the source's current one) of the index at `source` into
    `dest` and make it current there."""
    version = version or current_version_name(source)
    if version is None:
        raise IndexNotFoundError(f"no index at {source}: nothing to ship")
    version_dir = source / VERSIONS / version
    manifest = read_manifest(version_dir)
    copied, present, size = [], [], 0
    with store.ingest_lock(dest):  # one writer at the destination, as for qa-ingest
        for entry in manifest.segments:
            name = entry["name"]
            if (dest / SEGMENTS / name).is_dir():
                present.append(name)
                continue
            size += _copy_dir(source / SEGMENTS / name, dest / SEGMENTS, name)
            copied.append(name)
        new_version = not (dest / VERSIONS / version).is_dir()
        if new_version:
            size += _copy_dir(version_dir, dest / VERSIONS, version)
        try:
            load_version_dir(dest / VERSIONS / version, embedding=manifest.embedding_spec)  # verifies all
        except QAError:
            # Nothing names what this run copied: remove it, so a later run copies it afresh.
            for name in copied:
                shutil.rmtree(dest / SEGMENTS / name, ignore_errors=True)
            if new_version:
                shutil.rmtree(dest / VERSIONS / version, ignore_errors=True)
            raise
        size += _ship_calibration(source / CALIBRATION_FILE, dest / CALIBRATION_FILE)
        point_current(dest, version)
        prune(dest, keep_versions)
        size += _ship_question_path(source / IN_INDEX, dest / IN_INDEX)
    return ShipReport(version, copied, present, size)


def _ship_calibration(here: Path, there: Path) -> int:
    """Copy the calibration file `here` over `there` in one step unless they are the same; the
    bytes copied (none when the source has no calibration of its own)."""
    if not here.is_file():
        return 0
    data = here.read_bytes()
    if there.is_file() and there.read_bytes() == data:
        return 0
    tmp = there.with_name(f"{TMP_PREFIX}{there.name}")
    tmp.write_bytes(data)
    fsync_file(tmp)
    tmp.replace(there)
    fsync_dir(there.parent)
    return len(data)


def _ship_question_path(here: Path, there: Path) -> int:
    """Copy the exported question path `here` over `there` unless it is the same export; the
    bytes copied. A server that already loaded the old one keeps it in memory; one starting
    between the two renames finds none and exports its own."""
    if not here.is_dir():
        return 0
    try:
        if (there / META_FILE).read_bytes() == (here / META_FILE).read_bytes():
            return 0
    except OSError:
        pass
    old = there.parent / f"{TMP_PREFIX}old-{there.name}"
    shutil.rmtree(old, ignore_errors=True)
    if there.exists():
        there.rename(old)
    size = _copy_dir(here, there.parent, there.name)
    shutil.rmtree(old, ignore_errors=True)
    return size


def _copy_dir(source: Path, parent: Path, name: str) -> int:
    """Copy `source` to parent/name through a temporary name; the bytes copied."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f"{TMP_PREFIX}{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    files = [p for p in tmp.rglob("*") if p.is_file()]
    for path in files:
        fsync_file(path)
    size = sum(p.stat().st_size for p in files)
    tmp.rename(parent / name)
    fsync_dir(parent)
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-ship", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="index folder to ship from")
    parser.add_argument("dest", type=Path, help="index folder to ship to (created if missing)")
    parser.add_argument("--version", help="version to ship (default: the source's current one)")
    args = parser.parse_args(argv)

    def body() -> int:
        report = ship_version(args.source, args.dest, args.version)
        print(f"shipped {report.version}: {len(report.segments_copied)} segments copied "
              f"({report.bytes_copied} bytes), {len(report.segments_present)} already there; "
              f"{args.dest} now serves it")
        return 0

    return run_cli("qa-ship", body)


if __name__ == "__main__":
    sys.exit(main())
