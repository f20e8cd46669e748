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
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import DenseIndex, choose_kind
from index.errors import IndexCorruptError, IndexMismatchError
from index.files import checksum_files, fsync_dir, verify_files, write_json, write_jsonl
from index.lexical import LexicalSegment
from index.models import EmbeddingSpec
from index.records import SECTIONS, ArticleRecord, Chunk
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


@dataclass(frozen=True)
class ArticleKeys:
    """A segment's article ids (sorted, as ASCII bytes) and content hashes, by position.
    Memory-mapped: finding one article is a binary search, so an update that names its
    articles reads a few pages of a million-article segment, not all of it."""

    ids: np.ndarray  # dtype S: sorted
    hashes: np.ndarray  # dtype S64: hex sha256

    def find(self, article_id: str) -> int | None:
        """The article's position in this segment, or None."""
        key = article_id.encode("ascii")
        at = int(np.searchsorted(self.ids, key))
        return at if at < len(self.ids) and self.ids[at] == key else None

    @classmethod
    def load(cls, segment_dir: Path) -> ArticleKeys:
        folder = segment_dir / "keys"
        try:
            keys = cls(np.load(folder / "ids.npy", mmap_mode="r"), np.load(folder / "hashes.npy", mmap_mode="r"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"article keys in {folder} cannot be read: {exc}") from exc
        if len(keys.ids) != len(keys.hashes):
            raise IndexCorruptError(f"article keys in {folder} differ in length")
        return keys

    @staticmethod
    def write(folder: Path, articles: Sequence[ArticleRecord]) -> None:
        ids = np.array([a.id.encode("ascii") for a in articles], dtype=bytes)
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise ValueError("a segment's articles must be sorted by id, without duplicates")
        folder.mkdir()
        np.save(folder / "ids.npy", ids, allow_pickle=False)
        np.save(folder / "hashes.npy", np.array([a.content_hash.encode("ascii") for a in articles], dtype="S64"),
                allow_pickle=False)


class ArticleStore(Mapping[str, ArticleRecord]):
    """Articles of a segment, read from articles.jsonl on demand: id -> byte offset of its
    line. Holds ids, offsets and dates (search filters on dates); a small LRU keeps the
    articles just cited. Iterates in file order (sorted by id)."""

    _CACHE = 256

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, ArticleRecord] = OrderedDict()
        ids: list[str] = []
        offsets: list[int] = []
        dates: list[str] = []
        position = 0
        for line in self._file:
            if line.strip():
                row = json.loads(line)
                ids.append(sys.intern(row["id"]))
                offsets.append(position)
                dates.append(row.get("date") or "")
                ArticleRecord(**row)  # fail at load, not at the first question, on a bad row
            position += len(line)
        offsets.append(position)
        self.ids = ids
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._position = {article_id: i for i, article_id in enumerate(ids)}
        # Object arrays (sharing the strings above), for views joined across segments.
        self.id_array = np.empty(len(ids), dtype=object)
        self.id_array[:] = ids
        self.dates = np.empty(len(dates), dtype=object)
        self.dates[:] = dates

    def find(self, article_id: str) -> int | None:
        """The article's position in this segment, or None."""
        return self._position.get(article_id)

    def __getitem__(self, article_id: str) -> ArticleRecord:
        with self._lock:
            cached = self._cache.get(article_id)
            if cached is not None:
                self._cache.move_to_end(article_id)
                return cached
        i = self._position[article_id]  # KeyError for an unknown id, as a dict would
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        article = ArticleRecord(**json.loads(os.pread(self._file.fileno(), end - start, start)))
        with self._lock:
            self._cache[article_id] = article
            if len(self._cache) > self._CACHE:
                self._cache.popitem(last=False)
        return article

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._position

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def close(self) -> None:
        self._file.close()


class ChunkTable(Sequence[Chunk]):
    """Chunks of a segment as columns (table/*.npy); `table[row]` makes the Chunk, its text
    cut from the article. Per-row columns for vectorised filters: `article_ids`, `speakers`
    (object arrays sharing one string per distinct value), `sections`, `article_index`."""

    def __init__(self, directory: Path, articles: ArticleStore) -> None:
        self._articles = articles
        self.article_index = np.load(directory / "article.npy")
        self.start = np.load(directory / "start.npy")
        self.end = np.load(directory / "end.npy")
        self._section_codes = np.load(directory / "section.npy")
        self._speaker_codes = np.load(directory / "speaker.npy")
        # Ids and hashes are read for a few rows per question: leave them on disk.
        self._ids = np.load(directory / "id.npy", mmap_mode="r")
        self._hashes = np.load(directory / "text_hash.npy", mmap_mode="r")
        names = json.loads((directory / "speakers.json").read_text(encoding="utf-8"))
        self._speaker_names: list[str | None] = [sys.intern(n) for n in names] + [None]
        n = len(self.article_index)
        if not all(len(a) == n for a in (self.start, self.end, self._section_codes, self._speaker_codes, self._ids, self._hashes)):
            raise ValueError(f"chunk table columns in {directory} differ in length")
        if n and (self.article_index.max() >= len(articles) or self._speaker_codes.max() >= len(names)):
            raise ValueError(f"chunk table in {directory} points past its articles or speakers")
        self.article_ids = articles.id_array[self.article_index]
        speakers = np.empty(len(self._speaker_names), dtype=object)
        speakers[:] = self._speaker_names  # code -1 (no speaker) indexes the trailing None
        self.speakers = speakers[self._speaker_codes]
        sections = np.empty(len(SECTIONS), dtype=object)
        sections[:] = SECTIONS
        self.sections = sections[self._section_codes]

    def __len__(self) -> int:
        return len(self.article_index)

    @property
    def article_list(self) -> list[str]:
        """Article ids in table order: `article_index` values index this list."""
        return self._articles.ids

    def __getitem__(self, row):  # int -> Chunk, slice -> list[Chunk]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row)
        if row < 0:
            row += len(self)
        return self.chunk_with_text(row, self._articles[self.article_ids[row]].text)

    def chunk_with_text(self, row: int, article_text: str) -> Chunk:
        """Row `row` as a Chunk, its text cut from `article_text`, its article's full text
        (ingest passes the text it already holds instead of reading it again)."""
        start, end = int(self.start[row]), int(self.end[row])
        return Chunk(
            id=self._ids[row].decode("utf-8"),
            article_id=self.article_ids[row],
            text=article_text[start:end],
            start=start,
            end=end,
            section=self.sections[row],
            speaker=self.speakers[row],
            text_hash=self._hashes[row].decode("utf-8"),
        )

    def __iter__(self) -> Iterator[Chunk]:
        for row in range(len(self)):
            yield self[row]

    def map_speakers(self, transform: Callable[[str | None], Any]) -> np.ndarray:
        """`transform(speaker)` for every row, computed once per distinct speaker."""
        mapped = np.empty(len(self._speaker_names), dtype=object)
        mapped[:] = [transform(name) for name in self._speaker_names]
        return mapped[self._speaker_codes]


def write_table(directory: Path, articles: list[ArticleRecord], chunks: list[Chunk]) -> None:
    """Per-chunk columns (ChunkTable): small integer arrays, plus ids and hashes as bytes."""
    directory.mkdir()
    position = {a.id: i for i, a in enumerate(articles)}
    speaker_codes: dict[str, int] = {}
    section_codes = {name: i for i, name in enumerate(SECTIONS)}
    n = len(chunks)
    article = np.empty(n, dtype=np.int32)
    start = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    section = np.empty(n, dtype=np.uint8)
    speaker = np.empty(n, dtype=np.int32)
    for row, chunk in enumerate(chunks):
        article[row] = position[chunk.article_id]
        start[row] = chunk.start
        end[row] = chunk.end
        section[row] = section_codes[chunk.section]
        speaker[row] = -1 if chunk.speaker is None else speaker_codes.setdefault(chunk.speaker, len(speaker_codes))
    np.save(directory / "article.npy", article)
    np.save(directory / "start.npy", start)
    np.save(directory / "end.npy", end)
    np.save(directory / "section.npy", section)
    np.save(directory / "speaker.npy", speaker)
    np.save(directory / "id.npy", np.array([c.id.encode("utf-8") for c in chunks], dtype=bytes))
    np.save(directory / "text_hash.npy", np.array([c.text_hash.encode("utf-8") for c in chunks], dtype=bytes))
    (directory / "speakers.json").write_text(json.dumps(list(speaker_codes)), encoding="utf-8")


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
