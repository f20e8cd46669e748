"""What readers ask: every question, with when, how sure the search was, the articles cited and
how long it took, in SQLite beside the index; readers' "helpful / not helpful" on an answer;
and what editors read from it (`insights`).

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    asked_at REAL NOT NULL,
    question TEXT NOT NULL,
    confidence TEXT NOT NULL,
    articles TEXT NOT NULL,
    took_ms REAL NOT NULL,
    helpful INTEGER
);
CREATE INDEX IF NOT EXISTS questions_asked_at ON questions (asked_at);
"""
SIMILAR = 0.8  # cosine from which two unanswered questions are shown as one group
DAY_S = 86_400


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


def normalised(question: str) -> str:
    """The form two askings of one question share: case, punctuation and spacing dropped."""
    return " ".join(re.findall(r"\w+", question.casefold()))


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

    def record(self, question: str, confidence: str, articles: list[str], took_ms: float) -> str:
        """Log one answered question; its id is what feedback refers to."""
        answer_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO questions VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (answer_id, time.time(), question.strip(), confidence, json.dumps(articles), took_ms),
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
            return self._db.execute("DELETE FROM questions WHERE asked_at < ?", (cutoff,)).rowcount

    def insights(self, days: int, embed: Callable[[list[str]], np.ndarray], limit: int = 20) -> Insights:
        """The last `days`: the most asked questions, the unanswered ones (nothing found, or
        marked not helpful) grouped by similarity, and counts per day."""
        since = time.time() - days * DAY_S
        with self._lock:
            rows = self._db.execute(
                "SELECT question, confidence, helpful, asked_at FROM questions WHERE asked_at >= ? "
                "ORDER BY asked_at", (since,)
            ).fetchall()
        asked: dict[str, list[str]] = {}
        unanswered: dict[str, list[str]] = {}
        per_day: dict[str, list[int]] = {}
        for question, confidence, helpful, asked_at in rows:
            key = normalised(question)
            asked.setdefault(key, []).append(question)
            missed = confidence == "none" or helpful == 0
            if missed:
                unanswered.setdefault(key, []).append(question)
            day = per_day.setdefault(time.strftime("%Y-%m-%d", time.gmtime(asked_at)), [0, 0])
            day[0] += 1
            day[1] += missed
        most = sorted(asked.values(), key=len, reverse=True)[:limit]
        return Insights(
            since_days=days,
            questions=len(rows),
            most_asked=[Asked(_commonest(group), len(group)) for group in most],
            unanswered=_grouped(list(unanswered.values()), embed)[:limit],
            per_day=[Day(day, n, missed) for day, (n, missed) in sorted(per_day.items())],
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _commonest(askings: list[str]) -> str:
    """The most asked wording; of equally asked ones, the first asked."""
    return Counter(askings).most_common(1)[0][0]


def _grouped(askings: list[list[str]], embed: Callable[[list[str]], np.ndarray]) -> list[UnansweredGroup]:
    """Questions (each with its askings) joined when their vectors are within `SIMILAR`: each
    joins the first group, most asked first, whose leading question is that close."""
    if not askings:
        return []
    askings = sorted(askings, key=len, reverse=True)
    vectors = embed([_commonest(a) for a in askings])
    leaders: list[int] = []
    members: dict[int, list[int]] = {}
    for i, vector in enumerate(vectors):
        close = [lead for lead in leaders if float(vectors[lead] @ vector) >= SIMILAR]
        if close:
            members[close[0]].append(i)
        else:
            leaders.append(i)
            members[i] = [i]
    groups = []
    for lead in leaders:
        wordings = [_commonest(askings[i]) for i in members[lead]]
        groups.append(UnansweredGroup(wordings[0], sum(len(askings[i]) for i in members[lead]), wordings[1:5]))
    return sorted(groups, key=lambda g: g.count, reverse=True)
