"""Versions made of segments: a change writes a small new segment and marks deletions,
nothing else is rewritten, merges keep the results, and search over segments answers as a
fresh build of the same articles does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.encoder import Encoder
from index.errors import IngestError
from index.merge import SEGMENTS_PER_TIER
from index.search import Searcher
from index.segment import SEGMENTS
from index.settings import Settings
from index.store import load_index
from index.manifest import VERSIONS, current_version_name
from ingest.pipeline import IngestReport, run_ingest, run_update

QUESTIONS = [
    "who argues against means-testing?",
    "Which countries have co-operatives running hospitals?",
    "Which commenter compares healthcare to having a kitchen replaced?",
    "What does the NHS Long Term Plan say about communities?",
    "Where did the clinic open a walk-in service for night-shift workers?",
]
CLINIC = """The Riverside clinic opened a walk-in service for night-shift workers this spring.

Nurse manager Priya Raman said the clinic now sees forty patients a night, most of them
workers from the nearby distribution centre who cannot reach a GP during the day.
"""


def ingest(articles: Path, index: Path, encoder: Encoder, **options) -> IngestReport:
    return run_ingest(articles, Settings(index_dir=index, keep_versions=1), encoder=encoder, progress=False, **options)


def _files(index_dir: Path) -> dict[Path, tuple[int, int, int]]:
    return {
        p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for folder in (SEGMENTS, VERSIONS)
        for p in (index_dir / folder).rglob("*")
        if p.is_file()
    }


def _answers(index_dir: Path, encoder: Encoder) -> list[list[tuple[str, float]]]:
    """Each question's passages as (chunk id, score): row numbers differ between layouts."""
    searcher = Searcher(load_index(index_dir), encoder, Settings(index_dir=index_dir))
    return [
        [(p.chunk.id, round(p.score, 5)) for p in searcher.search(q, top_k=10).passages] for q in QUESTIONS
    ]


def _manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / VERSIONS / current_version_name(index_dir) / "manifest.json").read_text())


@pytest.mark.slow
def test_an_added_article_writes_one_small_segment_and_rewrites_nothing(
    articles_copy: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    ingest(articles_copy, index_dir, encoder)
    before = _files(index_dir)
    (articles_copy / "riverside.txt").write_text(CLINIC, encoding="utf-8")
    report = ingest(articles_copy, index_dir, encoder)

    after = _files(index_dir)
    kept = {p: stat for p, stat in before.items() if p in after}
    assert all(after[p] == stat for p, stat in kept.items())  # same inode, time and size
    segments = [entry["name"] for entry in _manifest(index_dir)["segments"]]
    assert report.segments == len(segments) == 2
    new = [p for p in after if p not in before]
    assert {p.relative_to(index_dir).parts[:2] for p in new} == {
        (SEGMENTS, segments[1]), (VERSIONS, report.version)
    }
    assert sum(after[p][2] for p in new) < 1_000_000
    searcher = Searcher(load_index(index_dir), encoder, Settings(index_dir=index_dir))
    assert searcher.search(QUESTIONS[-1]).passages[0].article.id == "riverside"


@pytest.mark.slow
def test_removed_and_replaced_articles_are_marked_deleted_and_answers_match_a_fresh_build(
    articles_copy: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    ingest(articles_copy, index_dir, encoder)
    (articles_copy / "riverside.txt").write_text(CLINIC, encoding="utf-8")
    ingest(articles_copy, index_dir, encoder)
    first_segment, clinic_segment = (index_dir / SEGMENTS / e["name"] for e in _manifest(index_dir)["segments"])
    untouched = {p: s for p, s in _files(index_dir).items() if first_segment in p.parents}

    # The shortest sample article goes, and the clinic's story is rewritten: its old copy is
    # marked deleted in the segment that holds it (a small share, so no merge is due).
    counts = load_index(index_dir).chunk_counts
    shortest = min((a for a in counts if a != "riverside"), key=counts.get)
    (articles_copy / f"{shortest}.txt").unlink()
    (articles_copy / f"{shortest}.meta.json").unlink(missing_ok=True)
    (articles_copy / "riverside.txt").write_text(CLINIC.replace("forty", "fifty"), encoding="utf-8")
    report = ingest(articles_copy, index_dir, encoder)

    assert (report.removed, report.changed, report.merges) == ([shortest], ["riverside"], 0)
    manifest = _manifest(index_dir)
    # The first segment lost an article; the clinic's old segment lost its only one, so the
    # version no longer names it; the new copy is a segment of its own.
    assert manifest["segments"][0]["deleted"] and report.segments == 2
    assert clinic_segment.name not in [e["name"] for e in manifest["segments"]]
    assert all(_files(index_dir)[p] == s for p, s in untouched.items())
    index = load_index(index_dir)
    assert shortest not in index.articles and "fifty" in index.articles["riverside"].text
    assert index.live_chunks < len(index.chunks)  # deleted rows are still in their segments

    fresh = tmp_path / "fresh"
    ingest(articles_copy, fresh, encoder)
    assert _answers(index_dir, encoder) == _answers(fresh, encoder)


@pytest.mark.slow
def test_merges_keep_the_answers_and_optimize_leaves_one_segment(
    articles_copy: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    ingest(articles_copy, index_dir, encoder)
    reports = []
    for i in range(SEGMENTS_PER_TIER - 1):  # one article per publish, as editors add them
        (articles_copy / f"clinic-{i}.txt").write_text(CLINIC.replace("forty", f"{40 + i}"), encoding="utf-8")
        reports.append(ingest(articles_copy, index_dir, encoder))
    assert [r.segments for r in reports[:-1]] == list(range(2, SEGMENTS_PER_TIER))
    assert reports[-1].merges == 1 and reports[-1].segments == 1  # the tier filled up: one merge
    fresh = tmp_path / "fresh"
    ingest(articles_copy, fresh, encoder)
    assert _answers(index_dir, encoder) == _answers(fresh, encoder)

    (articles_copy / "clinic-0.txt").unlink()
    report = ingest(articles_copy, index_dir, encoder, optimize=True)
    assert report.segments == 1 and report.merges == 1
    index = load_index(index_dir)
    assert index.live_chunks == len(index.chunks)  # the deleted rows are gone
    # Only the segment the one kept version names is left on disk.
    assert [p.name for p in (index_dir / SEGMENTS).iterdir()] == [_manifest(index_dir)["segments"][0]["name"]]


@pytest.mark.slow
def test_updates_naming_their_articles_give_the_index_a_folder_run_gives(
    articles_copy: Path, tmp_path: Path, encoder: Encoder
) -> None:
    index_dir = tmp_path / "index"
    settings = Settings(index_dir=index_dir, keep_versions=1)
    ingest(articles_copy, index_dir, encoder)
    clinic = articles_copy / "riverside.txt"
    clinic.write_text(CLINIC, encoding="utf-8")
    assert run_update([clinic], settings, encoder, progress=False).added == ["riverside"]
    version = current_version_name(index_dir)
    unchanged = run_update([clinic], settings, encoder, progress=False)
    assert (unchanged.unchanged, unchanged.published, current_version_name(index_dir)) == (["riverside"], False, version)

    # Replace the clinic's story and remove the shortest article, both by name.
    counts = load_index(index_dir).chunk_counts
    shortest = min((a for a in counts if a != "riverside"), key=counts.get)
    clinic.write_text(CLINIC.replace("forty", "fifty"), encoding="utf-8")
    report = run_update([clinic], settings, encoder, remove=[shortest], progress=False)
    assert (report.changed, report.removed) == (["riverside"], [shortest]) and report.chunks_embedded > 0
    assert report.bytes_written < 1_000_000 and report.timings["load"] < 1.0

    with pytest.raises(IngestError, match="not in the index"):
        run_update([], settings, encoder, remove=["no-such-article"], progress=False)
    with pytest.raises(IngestError, match="no article could be read"):
        run_update([tmp_path / "missing.txt"], settings, encoder, progress=False)
    assert current_version_name(index_dir) == report.version  # refused updates publish nothing

    # The folder agrees with what was named: a folder run finds nothing to do, and a fresh
    # build of it answers exactly as the updated index does.
    (articles_copy / f"{shortest}.txt").unlink()
    (articles_copy / f"{shortest}.meta.json").unlink(missing_ok=True)
    assert not ingest(articles_copy, index_dir, encoder).published
    fresh = tmp_path / "fresh"
    ingest(articles_copy, fresh, encoder)
    assert _answers(index_dir, encoder) == _answers(fresh, encoder)
