"""What a segment stores about its articles and chunks, and how it is read back: the articles
themselves (articles.jsonl, read on demand: ArticleStore), their ids and content hashes
(keys/, memory-mapped: ArticleKeys) and the chunks as columns (table/: ChunkTable). The rest
of a segment, and how it is written and verified as a whole, is index/segment.py.

A chunk's text is not stored: it is its article's `text[start:end]`, so a million chunks cost
a few small integer arrays in memory, not their text.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexCorruptError
from index.records import SECTIONS, ArticleRecord, Chunk


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
