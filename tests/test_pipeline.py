"""Ingest end to end on real files: chunks, incrementality, publishing, corruption."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from index.encoder import Encoder
from index.errors import IndexCorruptError, IndexMismatchError, IngestError
from index.models import EmbeddingSpec
from index.settings import Settings
from index.store import load_index
from index.manifest import VERSIONS, current_version_name
from ingest.chunk import paragraph_groups
from ingest.pipeline import run_ingest

ARTICLE = """The Riverside clinic opened a walk-in service for night-shift workers this spring.

Nurse manager Priya Raman said the clinic now sees forty patients a night, most of them
workers from the nearby distribution centre who cannot reach a GP during the day.
"""


def ingest(articles: Path, index: Path, encoder, **settings):
    return run_ingest(articles, Settings(index_dir=index, **settings), encoder=encoder, progress=False)


def test_chunks_are_exact_slices_within_the_token_limit(sample_index: Path, encoder) -> None:
    index = load_index(sample_index)
    limit = Settings().chunk_tokens
    assert len(index.chunks) > 20
    for chunk in index.chunks:
        article = index.articles[chunk.article_id]
        assert article.text[chunk.start : chunk.end] == chunk.text
        assert encoder.count_tokens(chunk.text) <= limit
        assert chunk.section in ("body", "comment")


def test_chunks_never_cross_a_section_or_speaker_boundary(sample_index: Path) -> None:
    index = load_index(sample_index)
    grimes = [c for c in index.chunks if c.speaker == "Richard Grimes"]
    assert grimes and all(c.section == "comment" for c in grimes)
    assert all("Richard Grimes says" not in c.text for c in index.chunks)
    kitchen = [c for c in index.chunks if "kitchen replaced" in c.text]
    assert [c.speaker for c in kitchen] == ["Richard Grimes"]


def test_paragraph_groups_start_a_new_run_once_the_minimum_is_held() -> None:
    text = "Title\n\none two three four\n  \nfive six\n\nseven eight nine ten eleven\n\ntwelve"

    def words(part: str) -> int:
        return len(part.split())

    groups = paragraph_groups(text, 0, len(text), 4, words)
    # The 1-word title joins the next paragraph; "five six" (2 words) is below the minimum
    # so the next paragraph joins it; "twelve" starts a run after the 7-word one.
    assert [text[a:b] for a, b in groups] == [
        "Title\n\none two three four",
        "five six\n\nseven eight nine ten eleven",
        "twelve",
    ]
    assert groups[0][0] == 0 and groups[-1][1] == len(text)
    # Groups are offsets into the whole text, and stay inside the range asked for.
    assert paragraph_groups(text, 7, 30, 4, words) == [(7, 25), (29, 30)]
    # Windows line ends inside a .jsonl article's text are blank lines too.
    crlf = "one two three four\r\n\r\nfive"
    assert [crlf[a:b] for a, b in paragraph_groups(crlf, 0, len(crlf), 4, words)] == [
        "one two three four\r",
        "five",
    ]


def test_short_paragraphs_are_not_packed_onto_a_full_one(tmp_path: Path, encoder) -> None:
    """A paragraph after one of at least half a chunk starts its own chunk, even where
    both would fit in one; a heading stays with the paragraph it introduces."""
    opening = (
        "Community pharmacies in the county have extended their opening hours so that people "
        "who work shifts can collect prescriptions in the evening, and the council says the "
        "scheme has reduced missed doses among older patients living alone. Pharmacists "
        "also check blood pressure on two evenings a week, without an appointment, and refer "
        "anyone with a worrying reading to the practice nurse the next morning."
    )
    funding = "The money for the scheme comes from the public health grant."
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "pharmacy.txt").write_text(
        f"Evening opening\n\n{opening}\n\n{funding}\n", encoding="utf-8"
    )
    assert Settings().chunk_tokens // 2 <= encoder.count_tokens(opening) < Settings().chunk_tokens
    ingest(articles, tmp_path / "index", encoder)
    texts = [c.text for c in load_index(tmp_path / "index").chunks]
    assert texts == [f"Evening opening\n\n{opening}", funding]


@pytest.mark.slow
def test_rerun_on_unchanged_folder_embeds_nothing(articles_copy: Path, tmp_path: Path, encoder) -> None:
    first = ingest(articles_copy, tmp_path / "index", encoder)
    assert (len(first.added), first.published) == (5, True)
    assert first.chunks_embedded == first.chunks > 0

    second = ingest(articles_copy, tmp_path / "index", encoder)
    assert second.chunks_embedded == 0
    assert (len(second.unchanged), second.published, second.version) == (5, False, first.version)


@pytest.mark.slow
def test_added_article_embeds_only_its_own_chunks(articles_copy: Path, tmp_path: Path, encoder) -> None:
    first = ingest(articles_copy, tmp_path / "index", encoder)
    (articles_copy / "riverside.txt").write_text(ARTICLE, encoding="utf-8")

    second = ingest(articles_copy, tmp_path / "index", encoder)
    index = load_index(tmp_path / "index")
    new_chunks = [c for c in index.chunks.live_chunks() if c.article_id == "riverside"]
    assert second.added == ["riverside"]
    assert second.chunks_embedded == len(new_chunks) > 0
    assert second.chunks == first.chunks + len(new_chunks)
    assert second.version != first.version and index.version == second.version
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-4)


@pytest.mark.slow
def test_edited_article_is_reembedded_and_removed_article_leaves(
    articles_copy: Path, tmp_path: Path, encoder
) -> None:
    ingest(articles_copy, tmp_path / "index", encoder)
    edited = articles_copy / "002_9aef70656a6b12be.txt"
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA closing line about pensions.\n", encoding="utf-8")
    (articles_copy / "003_34ccfc135a31d0e8.txt").unlink()

    report = ingest(articles_copy, tmp_path / "index", encoder)
    index = load_index(tmp_path / "index")
    assert report.changed == ["002_9aef70656a6b12be"]
    assert report.removed == ["003_34ccfc135a31d0e8"]
    # Only chunks whose text changed are embedded: most of 002 is served from the cache.
    chunks_002 = [c for c in index.chunks.live_chunks() if c.article_id == "002_9aef70656a6b12be"]
    assert 0 < report.chunks_embedded < len(chunks_002)
    assert "003_34ccfc135a31d0e8" not in index.articles
    assert all(c.article_id != "003_34ccfc135a31d0e8" for c in index.chunks.live_chunks())


@pytest.mark.slow
def test_changing_the_model_rebuilds_and_says_why(articles_copy: Path, tmp_path: Path, encoder) -> None:
    ingest(articles_copy, tmp_path / "index", encoder)
    built = re.escape(encoder.spec.describe())  # the configured model (QA_MODEL)
    with pytest.raises(IndexMismatchError, match=f"built with {built} but some/other-model"):
        load_index(tmp_path / "index", embedding=EmbeddingSpec("sentence-transformers", "some/other-model"))
    # A different chunk size is a pipeline change: everything is rebuilt, and the reason given.
    report = ingest(articles_copy, tmp_path / "index", encoder, chunk_tokens=100, chunk_overlap_tokens=10)
    assert report.rebuild_reason and "chunking changed" in report.rebuild_reason
    assert len(report.added) == 5 and report.published


def test_missing_or_empty_folder_is_a_clear_error(tmp_path: Path, encoder) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        ingest(tmp_path / "nope", tmp_path / "index", encoder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no articles found"):
        ingest(tmp_path / "empty", tmp_path / "index", encoder)
    assert current_version_name(tmp_path / "index") is None


def _version_dir(index_dir: Path) -> Path:
    return index_dir / VERSIONS / current_version_name(index_dir)


def _segment_dirs(index_dir: Path) -> list[Path]:
    manifest = json.loads((_version_dir(index_dir) / "manifest.json").read_text())
    return [index_dir / "segments" / entry["name"] for entry in manifest["segments"]]


@pytest.mark.slow
def test_altered_index_file_is_refused_naming_the_file(articles_copy: Path, tmp_path: Path, encoder) -> None:
    ingest(articles_copy, tmp_path / "index", encoder)
    vectors = _segment_dirs(tmp_path / "index")[0] / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-5] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="vectors.npy"):
        load_index(tmp_path / "index")


@pytest.mark.slow
def test_truncated_or_missing_index_file_is_refused(articles_copy: Path, tmp_path: Path, encoder) -> None:
    ingest(articles_copy, tmp_path / "index", encoder)
    segment = _segment_dirs(tmp_path / "index")[0]
    articles = segment / "articles.jsonl"
    original = articles.read_bytes()
    articles.write_bytes(original[:100])
    with pytest.raises(IndexCorruptError, match="articles.jsonl"):
        load_index(tmp_path / "index")
    articles.write_bytes(original)
    (segment / "dense.faiss").unlink()
    with pytest.raises(IndexCorruptError, match="dense.faiss"):
        load_index(tmp_path / "index")


@pytest.mark.slow
def test_corrupt_current_version_is_rebuilt_by_the_next_ingest(
    articles_copy: Path, tmp_path: Path, encoder
) -> None:
    ingest(articles_copy, tmp_path / "index", encoder)
    manifest = _version_dir(tmp_path / "index") / "manifest.json"
    manifest.write_text("{not json", encoding="utf-8")
    report = ingest(articles_copy, tmp_path / "index", encoder)
    assert report.rebuild_reason and "cannot be read" in report.rebuild_reason
    assert report.chunks_embedded == 0  # every vector comes from the cache
    assert len(load_index(tmp_path / "index").articles) == 5


@pytest.mark.slow
def test_index_of_an_older_format_is_refused_then_upgraded_from_the_cache(
    articles_copy: Path, tmp_path: Path, encoder
) -> None:
    ingest(articles_copy, tmp_path / "index", encoder)
    manifest = _version_dir(tmp_path / "index") / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps(data | {"format_version": data["format_version"] - 1}))
    with pytest.raises(IndexMismatchError, match="rebuild the index with qa-ingest"):
        load_index(tmp_path / "index")
    report = ingest(articles_copy, tmp_path / "index", encoder)
    assert report.rebuild_reason and "index format" in report.rebuild_reason
    assert report.chunks_embedded == 0
    assert load_index(tmp_path / "index").lexical.scores("means-testing").any()


def test_manifest_records_model_counts_segments_and_checksums(sample_index: Path, encoder: Encoder) -> None:
    manifest = json.loads((_version_dir(sample_index) / "manifest.json").read_text())
    assert manifest["model"] == Settings().model == encoder.model_name
    assert manifest["dim"] == encoder.dim == len(encoder.encode(["a question"])[0])
    assert manifest["counts"]["articles"] == 5
    assert manifest["chunking"]["chunk_tokens"] == Settings().chunk_tokens
    (segment,) = _segment_dirs(sample_index)
    info = json.loads((segment / "segment.json").read_text())
    assert info["counts"] == {"articles": 5, "chunks": manifest["counts"]["chunks"]}
    assert {"vectors.npy", "table/id.npy", "articles.jsonl", "dense.faiss", "lexical/terms.json"} <= set(info["files"])
