"""Shared fixtures: the real model, loaded once per session, and a real index of the sample corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from index.encoder import Encoder
from index.search import Searcher
from index.settings import Settings
from index.store import load_index
from ingest.pipeline import run_ingest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_ARTICLES = REPO / "data" / "articles"


def record(name: str, figures: dict) -> None:
    """Write a test's figures (for docs/reliability.md) to the git-ignored test-artifacts folder."""
    folder = REPO / "test-artifacts"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(figures, indent=1))


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder(Settings().model)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """An index of the five sample articles, built once; tests must not modify it."""
    index_dir = tmp_path_factory.mktemp("sample") / "index"
    run_ingest(SAMPLE_ARTICLES, Settings(index_dir=index_dir), encoder=encoder, progress=False)
    return index_dir


@pytest.fixture(scope="session")
def searcher(sample_index: Path, encoder: Encoder) -> Searcher:
    return Searcher(load_index(sample_index), encoder, Settings(index_dir=sample_index))


@pytest.fixture
def articles_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample articles."""
    target = tmp_path / "articles"
    shutil.copytree(SAMPLE_ARTICLES, target)
    return target
