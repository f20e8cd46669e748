"""Shipping a version to another index directory (index/ship.py, `qa-ship`): only missing
segments are copied, everything is verified before the destination's CURRENT moves, and a
bad copy changes nothing there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from index.confidence import CALIBRATION_FILE, Calibration, choose_calibration, save_calibration
from index.encoder import Encoder
from index.errors import IndexCorruptError
from index.query_model import IN_INDEX, META_FILE
from index.segment import SEGMENTS, TMP_PREFIX
from index.settings import Settings
from index.ship import ship_version
from index.store import load_index
from index.manifest import current_version_name
from ingest.pipeline import run_update

CLINIC = "The Riverside clinic opened a walk-in service for night-shift workers this spring.\n"


def test_ship_copies_what_is_missing_and_moves_the_pointer_last(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    source, dest = tmp_path / "source", tmp_path / "dest"
    shutil.copytree(sample_index, source)
    first = ship_version(source, dest)
    assert first.version == current_version_name(source) == current_version_name(dest)
    assert len(first.segments_copied) == 1 and not first.segments_present
    assert sorted(load_index(dest).articles) == sorted(load_index(source).articles)

    # A new article at the source: the next ship copies its segment and the version only.
    (tmp_path / "clinic.txt").write_text(CLINIC, encoding="utf-8")
    run_update([tmp_path / "clinic.txt"], Settings(index_dir=source), encoder, progress=False)
    second = ship_version(source, dest)
    assert second.segments_present == first.segments_copied and len(second.segments_copied) == 1
    assert second.bytes_copied < 1_000_000
    assert "clinic" in load_index(dest).articles

    # A corrupt segment at the source: refused before the pointer moves, nothing left behind.
    (tmp_path / "clinic.txt").write_text(CLINIC + "\nIt now opens at weekends.\n", encoding="utf-8")
    report = run_update([tmp_path / "clinic.txt"], Settings(index_dir=source), encoder, progress=False)
    newest = max((source / SEGMENTS).iterdir())
    faiss = newest / "dense.faiss"
    data = faiss.read_bytes()
    faiss.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(IndexCorruptError, match="checksum"):
        ship_version(source, dest)
    assert current_version_name(dest) == second.version != report.version
    assert not (dest / SEGMENTS / newest.name).exists()
    assert "weekends" not in load_index(dest).articles["clinic"].text


def test_ship_brings_the_source_calibration_along(tmp_path: Path, sample_index: Path, encoder: Encoder) -> None:
    source, dest = tmp_path / "source", tmp_path / "dest"
    shutil.copytree(sample_index, source)
    # (The sample index has one of its own when the suite runs with another model: qa-calibrate's.)
    (source / CALIBRATION_FILE).unlink(missing_ok=True)
    ship_version(source, dest)
    assert not (dest / CALIBRATION_FILE).exists()  # the source has none of its own: nothing to copy

    own = Calibration(load_index(source).manifest.model, ("margin",), (4.0,), -1.0, {"searches": 10})
    save_calibration(source, own)
    (tmp_path / "clinic.txt").write_text(CLINIC, encoding="utf-8")
    run_update([tmp_path / "clinic.txt"], Settings(index_dir=source), encoder, progress=False)
    ship_version(source, dest)
    assert (dest / CALIBRATION_FILE).read_bytes() == (source / CALIBRATION_FILE).read_bytes()
    assert choose_calibration(dest, own.embedding_spec).calibration == own
    assert not list(dest.glob(f"{TMP_PREFIX}*"))


@pytest.mark.slow
def test_qa_ship_reports_what_it_did_and_refuses_a_missing_index(tmp_path: Path, sample_index: Path) -> None:
    qa_ship = str(Path(sys.executable).parent / "qa-ship")
    done = subprocess.run([qa_ship, str(sample_index), str(tmp_path / "dest")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and "1 segments copied" in done.stdout, done.stderr
    missing = subprocess.run([qa_ship, str(tmp_path / "nothing"), str(tmp_path / "dest2")], capture_output=True,
                             text=True, timeout=120, check=False)
    assert missing.returncode == 1 and "no index at" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_the_question_path_qa_ingest_exports_travels_with_the_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    articles, source, dest = tmp_path / "articles", tmp_path / "source", tmp_path / "dest"
    articles.mkdir()
    (articles / "clinic.txt").write_text(CLINIC, encoding="utf-8")
    qa_ingest = str(Path(sys.executable).parent / "qa-ingest")
    subprocess.run([qa_ingest, str(articles), "--index", str(source), "--quiet"], check=True,
                   capture_output=True, timeout=300)
    assert (source / IN_INDEX / META_FILE).is_file()

    ship_version(source, dest)
    assert (dest / IN_INDEX / META_FILE).read_bytes() == (source / IN_INDEX / META_FILE).read_bytes()
    # A server of the copy reads it as it is: no export, so no torch, at its start.
    caplog.set_level("INFO", logger="index.encoder")
    assert Encoder.for_settings(Settings(index_dir=dest), threads=1).prepare_question_path()
    assert "export" not in caplog.text

    # Exported again for another model at the source: the next shipment replaces the copy's.
    meta = json.loads((source / IN_INDEX / META_FILE).read_text(encoding="utf-8"))
    (source / IN_INDEX / META_FILE).write_text(json.dumps(meta | {"model": "another-model"}), encoding="utf-8")
    ship_version(source, dest)
    assert json.loads((dest / IN_INDEX / META_FILE).read_text(encoding="utf-8"))["model"] == "another-model"
    assert (dest / IN_INDEX / "model.onnx").is_file() and not list((dest / IN_INDEX.parent).glob(f"{TMP_PREFIX}*"))
