"""What readers ask: every question, with when, how sure the search was, the articles cited,
the passages shown and how long it took, in SQLite beside the index; readers' "helpful / not
helpful" on an answer; and what editors read from it (`insights`). Editors' judgments of the
questions (qa_service/judgments.py) are kept in the same database, in a table of their own.

Nothing that identifies a reader is stored: no address, no cookie, no conversation id. Rows
older than the retention period are deleted. The database is in WAL mode with synchronous
NORMAL: a question logged is in the WAL before `/ask` answers, a `kill -9` of the service
loses nothing written, and readers of the log never block the writer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    asked_at REAL NOT NULL,
    question TEXT NOT NULL,
    confidence TEXT NOT NULL,
    articles TEXT NOT NULL,
    took_ms REAL NOT NULL,
    helpful INTEGER,
    shown TEXT  -- JSON: the passages shown, in rank order, each [article_id, start, end]
);
CREATE INDEX IF NOT EXISTS questions_asked_at ON questions (asked_at);
CREATE TABLE IF NOT EXISTS question_vectors (
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (model, text)
);
CREATE TABLE IF NOT EXISTS judgments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id TEXT,
    question TEXT NOT NULL,
    asked_confidence TEXT,
    verdict TEXT NOT NULL,
    article_id TEXT,
    start INTEGER,
    "end" INTEGER,
    text TEXT,
    speaker TEXT,
    judge TEXT,
    judged_at REAL NOT NULL,
    "right" INTEGER
);
CREATE INDEX IF NOT EXISTS judgments_judged_at ON judgments (judged_at);
"""
# Columns added since the first release: (table, column, its declaration), added in place.
_ADDED_COLUMNS = (("questions", "shown", "TEXT"),)
_MISSED = "(confidence = 'none' OR COALESCE(helpful, 1) = 0)"
# Counted by SQLite, each in one pass over the table rather than through the asked_at index
# (`+asked_at`): for most of the log, reading in order is twice as fast as a lookup per row.
_PER_DAY = (
    f"SELECT CAST(asked_at / 86400 AS INTEGER) AS day, COUNT(*), SUM({_MISSED}) "
    "FROM questions WHERE +asked_at >= ? GROUP BY day ORDER BY day"
)
# Each distinct wording: how often asked and when first and last, and the same of its
# unanswered askings.
_PER_WORDING = (
    f"SELECT question, COUNT(*), MIN(asked_at), MAX(asked_at), SUM({_MISSED}), "
    f"MIN(CASE WHEN {_MISSED} THEN asked_at END), MAX(CASE WHEN {_MISSED} THEN asked_at END) "
    "FROM questions WHERE +asked_at >= ? GROUP BY question"
)
SIMILAR = 0.8  # cosine from which two unanswered questions are shown as one group
GROUPED_SAMPLE = 300  # unanswered wordings grouped, the most asked (QA_INSIGHTS_SAMPLE)
EMBEDDED_PER_CALL = 100  # of them, at most this many not embedded yet are embedded by one call
DAY_S = 86_400
Shown = tuple[str, int, int]  # a passage shown: article id, start and end offsets in its text


@dataclass(frozen=True)
class Asked:
    question: str
    count: int


@dataclass(frozen=True)
class UnansweredGroup:
    question: str  # the group's most asked wording
    count: int
    examples: list[str]  # other wordings, most asked first


@dataclass(frozen=True)
class Day:
    day: str  # YYYY-MM-DD, UTC
    questions: int
    unanswered: int


@dataclass(frozen=True)
class Insights:
    since_days: int
    questions: int
    most_asked: list[Asked]
    unanswered: list[UnansweredGroup]
    per_day: list[Day]
    unanswered_wordings: int  # distinct unanswered questions (case and punctuation aside)
    grouped: int  # of them, the most asked, grouped into `unanswered`


_WORD = re.compile(r"\w+")


def normalised(question: str) -> str:
    """The form two askings of one question share: case, punctuation and spacing dropped."""
    return " ".join(_WORD.findall(question.casefold()))


class QuestionLog:
    def __init__(self, path: Path, retention_days: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_days = retention_days
        # One connection, shared by the request threads under a lock: an insert takes tens
        # of microseconds, so they queue for less than a connection per thread would cost.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            _add_missing_columns(self._db)
        # Insights read through a connection of their own: in WAL mode a reader does not hold
        # up the writer, so counting a large log does not delay the questions being logged.
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._read_lock = threading.Lock()

    def record(self, question: str, confidence: str, articles: list[str], took_ms: float,
               shown: list[Shown] | None = None) -> str:
        """Log one answered question, with the passages it showed (`shown`, in rank order);
        its id is what feedback and judgments refer to."""
        answer_id = uuid.uuid4().hex
        passages = None if shown is None else json.dumps([list(passage) for passage in shown])
        with self._lock:
            self._db.execute(
                "INSERT INTO questions (id, asked_at, question, confidence, articles, took_ms, helpful, shown) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                (answer_id, time.time(), question.strip(), confidence, json.dumps(articles), took_ms, passages),
            )
        return answer_id

    def feedback(self, answer_id: str, helpful: bool) -> bool:
        """Mark an answer helpful or not (the last word counts); False if no such answer."""
        with self._lock:
            changed = self._db.execute(
                "UPDATE questions SET helpful = ? WHERE id = ?", (int(helpful), answer_id)
            ).rowcount
        return changed == 1

    def prune(self, now: float | None = None) -> int:
        """Delete what is older than the retention period; how many rows went."""
        cutoff = (now or time.time()) - self.retention_days * DAY_S
        with self._lock:
            self._db.execute("DELETE FROM question_vectors WHERE added_at < ?", (cutoff,))
            return self._db.execute("DELETE FROM questions WHERE asked_at < ?", (cutoff,)).rowcount

    def insights(self, days: int, embed: Callable[[list[str]], np.ndarray], limit: int = 20,
                 model: str = "", sample: int = GROUPED_SAMPLE) -> Insights:
        """The last `days`: the most asked questions, the unanswered ones (nothing found, or
        marked not helpful) grouped by similarity, and counts per day.

        Counted by SQLite and then per distinct wording, so the cost grows with the log's
        rows only through SQLite's counting. Of the unanswered questions, the `sample` most
        asked (the most recently asked first among equals) are grouped; their vectors, from
        `embed` for `model`, are kept in the log, so each wording is embedded once, and one
        call embeds at most `EMBEDDED_PER_CALL` (those it has no vector for yet wait for the
        next call: `grouped` says how many were)."""
        since = time.time() - days * DAY_S
        with self._read_lock:
            days_rows = self._reader.execute(_PER_DAY, (since,)).fetchall()
            wordings = self._reader.execute(_PER_WORDING, (since,)).fetchall()
        asked: dict[str, _Tally] = {}
        unanswered: dict[str, _Tally] = {}
        for question, count, first, last, missed, first_missed, last_missed in wordings:
            key = normalised(question)
            asked.setdefault(key, _Tally()).add(question, count, first, last)
            if missed:
                unanswered.setdefault(key, _Tally()).add(question, missed, first_missed, last_missed)
        most = sorted(asked.values(), key=lambda t: (-t.count, t.first))[:limit]
        chosen = sorted(unanswered.values(), key=lambda t: (-t.count, -t.last))[:sample]
        vectors = self._vectors([tally.wording for tally in chosen], embed, model)
        chosen = [tally for tally in chosen if tally.wording in vectors]
        return Insights(
            since_days=days,
            questions=sum(n for _, n, _ in days_rows),
            most_asked=[Asked(t.wording, t.count) for t in most],
            unanswered=_grouped(chosen, [vectors[tally.wording] for tally in chosen])[:limit],
            per_day=[Day(time.strftime("%Y-%m-%d", time.gmtime(day * DAY_S)), n, missed)
                     for day, n, missed in days_rows],
            unanswered_wordings=len(unanswered),
            grouped=len(chosen),
        )

    def _vectors(self, texts: list[str], embed: Callable[[list[str]], np.ndarray],
                 model: str) -> dict[str, np.ndarray]:
        """`texts`' vectors: those kept in the log, and up to `EMBEDDED_PER_CALL` of the others
        (the first) embedded now and kept; the rest wait for the next call, so that one call's
        time stays bounded however many new questions came in."""
        kept: dict[str, np.ndarray] = {}
        with self._read_lock:
            for start in range(0, len(texts), 500):
                part = texts[start:start + 500]
                marks = ",".join("?" * len(part))
                for text, blob in self._reader.execute(
                    f"SELECT text, vector FROM question_vectors WHERE model = ? AND text IN ({marks})",
                    (model, *part),
                ):
                    kept[text] = np.frombuffer(blob, dtype=np.float32)
        missing = [text for text in texts if text not in kept][:EMBEDDED_PER_CALL]
        if missing:
            fresh = np.asarray(embed(missing), dtype=np.float32)
            now = time.time()
            rows = [(model, text, vector.tobytes(), now) for text, vector in zip(missing, fresh)]
            with self._lock:
                self._db.execute("BEGIN")
                try:
                    self._db.executemany("INSERT OR REPLACE INTO question_vectors VALUES (?, ?, ?, ?)", rows)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            kept.update(zip(missing, fresh))
        return kept

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The writer's connection, held for the block (autocommit: BEGIN for a transaction)."""
        with self._lock:
            yield self._db

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The readers' connection, held for the block: it never holds up the writer."""
        with self._read_lock:
            yield self._reader

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Migrate a log written by an earlier release in place: add the columns it lacks."""
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


@dataclass
class _Tally:
    """One question's askings, over its wordings (case and punctuation aside)."""

    count: int = 0
    first: float = float("inf")  # when first asked
    last: float = 0.0  # when last asked
    wording: str = ""  # the most asked wording; of equally asked ones, the first asked
    _best: tuple[int, float] = (0, 0.0)

    def add(self, wording: str, count: int, first: float, last: float) -> None:
        self.count += count
        self.first, self.last = min(self.first, first), max(self.last, last)
        if (count, -first) > self._best:
            self.wording, self._best = wording, (count, -first)


def _grouped(questions: list[_Tally], vectors: list[np.ndarray]) -> list[UnansweredGroup]:
    """Questions (most asked first, with their vectors) joined when their vectors are within
    `SIMILAR`: each joins the first group whose leading question is that close, or leads a
    new one. The pairs that close are found at once with FAISS (a range search over the
    questions' own vectors); the pass over them is linear in the pairs."""
    if not questions:
        return []
    matrix = np.stack(vectors)
    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    lims, _, neighbours = index.range_search(matrix, SIMILAR)
    leads: dict[int, list[int]] = {}  # a group's leading question -> its members, leader first
    for i in range(len(questions)):
        close = [int(j) for j in neighbours[lims[i]:lims[i + 1]] if j < i and int(j) in leads]
        if close:
            leads[min(close)].append(i)
        else:
            leads[i] = [i]
    groups = [
        UnansweredGroup(questions[lead].wording, sum(questions[i].count for i in members),
                        [questions[i].wording for i in members[1:5]])
        for lead, members in leads.items()
    ]
    return sorted(groups, key=lambda g: g.count, reverse=True)
