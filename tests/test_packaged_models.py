"""Assembling a model packaged as a split zip: the weights' SHA-256 decides whether it is kept.

The real parts are 440 MB (scripts/setup.sh --mpnet); these tests split a small archive the
test writes, which exercises the same joining, unpacking and checking."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from index.packaged_models import MODELS, AssemblyError, PackagedModel, assemble_pieces, is_packaged

WEIGHTS = b"not really weights, but bytes with a known digest" * 100


def split_archive(tmp_path: Path, weights: bytes, parts: int = 3) -> list[Path]:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("tiny-model/model.safetensors", weights)
        out.writestr("tiny-model/config.json", "{}")
    data = archive.read_bytes()
    size = len(data) // parts + 1
    pieces = []
    for i in range(parts):
        piece = tmp_path / f"model.zip.{i + 1:03d}"
        piece.write_bytes(data[i * size : (i + 1) * size])
        pieces.append(piece)
    return pieces


def test_the_pieces_join_into_the_checked_model(tmp_path: Path) -> None:
    model = PackagedModel("tiny-model", (), hashlib.sha256(WEIGHTS).hexdigest())
    folder = assemble_pieces(model, split_archive(tmp_path, WEIGHTS), tmp_path / "models")
    assert folder == tmp_path / "models" / "tiny-model"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "config.json").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["tiny-model"]  # no scratch left


def test_weights_with_another_digest_are_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    model = PackagedModel("tiny-model", (), hashlib.sha256(WEIGHTS).hexdigest())
    tampered = split_archive(tmp_path, WEIGHTS.replace(b"known", b"other"))
    with pytest.raises(AssemblyError, match="SHA-256 .* refused"):
        assemble_pieces(model, tampered, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_pieces_out_of_order_are_not_a_model(tmp_path: Path) -> None:
    model = PackagedModel("tiny-model", (), hashlib.sha256(WEIGHTS).hexdigest())
    pieces = split_archive(tmp_path, WEIGHTS)
    with pytest.raises(AssemblyError):
        assemble_pieces(model, list(reversed(pieces)), tmp_path / "models")


def test_mpnet_is_known_by_its_names() -> None:
    assert is_packaged("all-mpnet-base-v2") and is_packaged("sentence-transformers/all-mpnet-base-v2")
    assert len(MODELS["all-mpnet-base-v2"].distributions) == 5
    assert not is_packaged("sentence-transformers/all-MiniLM-L6-v2")
