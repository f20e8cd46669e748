"""Segments: the immutable parts an index version is made of (Lucene's idea). Each is a
complete small index of some articles, written once and never changed; a version
(index/store.py) names its segments and which of their articles are deleted. (Not to be
confused with ingest/segment.py, which splits an article into its body and comments.)

Layout of INDEX_DIR/segments/<name>/:
    segment.json    model and embedding spec, dimension, counts, the dense index kind, every
                    file's sha256
    articles.jsonl  the segment's articles, sorted by id (ArticleStore)
    keys/           the same articles' ids and content hashes as fixed-width byte arrays
                    (ArticleKeys): what an update looks an article up in, memory-mapped
    table/          per-chunk columns (ChunkTable)
    vectors.npy     the chunks' vectors, for merges (serving reads dense.faiss)
    dense.faiss     FAISS index of the vectors: exact when small, IVF when large
    lexical/        BM25 postings (index/lexical.py)

The article and chunk files (articles.jsonl, keys/, table/) are read and written by
index/segment_tables.py; this module writes, verifies and loads a segment as a whole.

A segment is written under segments/.tmp-<name>, fsynced, loaded and verified, then renamed:
a crash leaves either no segment or a complete one, and a complete one that no version names
is removed by the next prune.

Memory at a million chunks: a loaded segment keeps in memory only the FAISS index (the one copy
of the vectors; see index/dense.py), the memory-mapped postings, and per-chunk columns from
`table/` (article, offsets, section, speaker as small integer arrays). Article text is read
from articles.jsonl on demand, and a chunk's text is its article's `text[start:end]`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import DenseIndex, choose_kind
from index.errors import IndexCorruptError, IndexMismatchError
from index.files import checksum_files, fsync_dir, verify_files, write_json, write_jsonl
from index.lexical import LexicalSegment
from index.models import EmbeddingSpec
from index.records import ArticleRecord, Chunk
from index.segment_tables import ArticleKeys, ArticleStore, ChunkTable, write_table
from index.settings import DenseIndexSetting

SEGMENTS = "segments"
TMP_PREFIX = ".tmp-"
_SEGMENT_RE = re.compile(r"^s(\d{6})$")


@dataclass(frozen=True)
class DenseOptions:
    """How a segment's dense index is built (index/settings.py: dense_index and friends)."""

    setting: DenseIndexSetting = "auto"
    ann_min_chunks: int = 50_000
    nprobe: int | None = None
    ef_search: int = 64


@dataclass
class SegmentInfo:
    """segment.json."""

    name: str
    model: str
    dim: int
    counts: dict[str, int]  # articles, chunks
    dense: dict[str, Any]  # FAISS index kind and setting
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    # EmbeddingSpec.record() of the vectors; {} in a segment written before specs were recorded.
    embedding: dict[str, str] = field(default_factory=dict)

    @property
    def embedding_spec(self) -> EmbeddingSpec:
        return EmbeddingSpec.from_record(self.embedding or None, self.model)


@dataclass
class Segment:
    """A loaded, verified segment."""

    info: SegmentInfo
    path: Path
    articles: ArticleStore
    chunks: ChunkTable
    dense: DenseIndex
    lexical: LexicalSegment

    @property
    def name(self) -> str:
        return self.info.name

    def vectors(self) -> np.ndarray:
        """Every chunk's float32 vector, memory-mapped (for a merge)."""
        return np.load(self.path / "vectors.npy", mmap_mode="r", allow_pickle=False)


def lexical_text(chunk: Chunk, title: str | None) -> str:
    """What BM25 sees: the article's title, the speaker and the passage, so a name finds what
    that person said and a question in the title's words finds the article's passages."""
    return "\n".join(part for part in (title, chunk.speaker, chunk.text) if part)


def next_segment_name(index_dir: Path) -> str:
    folder = index_dir / SEGMENTS
    numbers = [0] + [
        int(m.group(1)) for m in (_SEGMENT_RE.match(e.name) for e in folder.iterdir()) if m
    ] if folder.is_dir() else [0]
    return f"s{max(numbers) + 1:06d}"


def write_segment(
    index_dir: Path,
    articles: list[ArticleRecord],
    chunks: list[Chunk],
    vectors: np.ndarray,
    model: str,
    dense: DenseOptions,
    trained: DenseIndex | None = None,
    embedding: EmbeddingSpec | None = None,
) -> SegmentInfo:
    """Write, verify and put in place a segment of `articles` (sorted by id) and their
    `chunks` (grouped by article in that order) with one vector per chunk, made with
    `embedding` (default: `model` with no prefixes)."""
    embedding = embedding or EmbeddingSpec.from_record(None, model)
    if embedding.model != model:
        raise ValueError(f"writing vectors of {embedding.describe()} as model {model!r}")
    if vectors.shape[0] != len(chunks):
        raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
    folder = index_dir / SEGMENTS
    folder.mkdir(parents=True, exist_ok=True)
    name = next_segment_name(index_dir)
    tmp = folder / f"{TMP_PREFIX}{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # vars(), not asdict(): the fields are plain values, and asdict's deep copy was seconds at 100k articles.
        write_jsonl(tmp / "articles.jsonl", [vars(a) for a in articles])
        ArticleKeys.write(tmp / "keys", articles)
        write_table(tmp / "table", articles, chunks)
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        kind = choose_kind(len(vectors), dense.setting, dense.ann_min_chunks)
        dense_index = DenseIndex.build(
            vectors, kind, nprobe=dense.nprobe, ef_search=dense.ef_search,
            trained=trained if kind == "ivf" else None,
        )
        dense_index.save(tmp / "dense.faiss")
        titles = {article.id: article.title for article in articles}
        LexicalSegment.build([lexical_text(c, titles[c.article_id]) for c in chunks]).save(tmp / "lexical")
        info = SegmentInfo(
            name=name, model=model, dim=int(vectors.shape[1]) if vectors.ndim == 2 else 0,
            counts={"articles": len(articles), "chunks": len(chunks)},
            dense={"kind": dense_index.kind, "setting": dense.setting},
            files=checksum_files(tmp),
            embedding=embedding.record(),
        )
        del dense_index
        write_json(tmp / "segment.json", asdict(info))
        fsync_dir(tmp)
        load_segment(tmp, expected=embedding)  # verify what is on disk before naming it
        os.rename(tmp, folder / name)
        fsync_dir(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def read_segment_info(path: Path) -> SegmentInfo:
    info_path = path / "segment.json"
    try:
        return SegmentInfo(**json.loads(info_path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{info_path} is missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise IndexCorruptError(f"{info_path} cannot be read: {exc}") from exc


def load_segment(path: Path, expected: EmbeddingSpec | None = None, verify: bool = True) -> Segment:
    """Load a segment, refused if its vectors are of another embedding spec than `expected`;
    `verify` checks every file against its recorded sha256 first."""
    info = read_segment_info(path)
    if expected is not None and info.embedding_spec != expected:
        raise IndexMismatchError(
            f"segment {path} was built with {info.embedding_spec.describe()} but "
            f"{expected.describe()} is expected; rebuild with qa-ingest"
        )
    if verify:
        verify_files(path, info.files)
    try:
        articles = ArticleStore(path / "articles.jsonl")
        chunks = ChunkTable(path / "table", articles)
        dense = DenseIndex.load(path / "dense.faiss")
        lexical = LexicalSegment.load(path / "lexical")
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise IndexCorruptError(f"segment {path} cannot be read: {exc}") from exc
    expected = (info.counts.get("articles"), info.counts.get("chunks"))
    found = (len(articles), len(chunks))
    keys = ArticleKeys.load(path)
    same_keys = len(keys.ids) == len(articles) and bool(np.array_equal(keys.ids, np.array(articles.ids, dtype=bytes)))
    if found != expected or dense.size != len(chunks) or len(lexical) != len(chunks) or not same_keys:
        raise IndexCorruptError(
            f"segment {path} is inconsistent: segment.json says {expected[0]} articles and "
            f"{expected[1]} chunks; found {found[0]} articles, {found[1]} chunks, a dense index "
            f"of {dense.size} and postings of {len(lexical)}"
            + ("" if same_keys else "; its article keys do not match articles.jsonl")
        )
    return Segment(info, path, articles, chunks, dense, lexical)
