"""Editors' judgments of what readers asked, and the evaluation set they make.

An editor judges a logged question (qa_service/question_log.py): a passage of an article
answers it (`answers`, kept as the article id, the offsets and the text, so that it survives
re-chunking and a rebuilt index), or the archive does not (`not_in_archive`). Judgments live in
the question log's database, in a table of their own, and are not pruned with the questions:
they hold a question's text and a passage, nothing about a reader.

From them: the questions waiting for an editor (`JudgmentStore.queue`), how often confident
answers were right, week by week (`summarised`), and `qa-judgments export`: one row per
question in index/evaluate.py's format, which qa-eval and qa-calibrate read.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import hashlib
import json
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from index.errors import QAError
from qa_service.question_log import DAY_S, QuestionLog, Shown, normalised

ANSWERS, NOT_IN_ARCHIVE = "answers", "not_in_archive"
# Why a question waits for an editor, most useful first (the queue's order).
HALVES = ("fit", "check")  # qa-judgments export --half: fit a calibration on one, report on the other
REASONS = ("unanswered", "not_helpful", "low_confidence", "confident")
_REASON = ("CASE WHEN confidence = 'none' THEN 0 WHEN helpful = 0 THEN 1 "
           "WHEN confidence = 'low' THEN 2 ELSE 3 END")
_LOGGED = f"SELECT id, asked_at, question, confidence, helpful, shown, {_REASON} FROM questions"
# Each wording's latest asking for each reason (SQLite takes `id` from the row with MAX(asked_at)).
_LATEST_PER_REASON = (
    f"SELECT id, question, reason, MAX(asked_at) FROM (SELECT id, question, asked_at, {_REASON} AS reason "
    "FROM questions WHERE +asked_at >= ?) GROUP BY question, reason"
)
_COLUMNS = ('id, question_id, question, asked_confidence, verdict, article_id, start, "end", text, '
            'speaker, judge, judged_at, "right"')


@dataclass(frozen=True)
class Span:
    """A passage judged to answer: where it is in its article, its text, and who speaks it."""

    article_id: str
    start: int
    end: int
    text: str
    speaker: str | None


@dataclass(frozen=True)
class Judgment:
    id: int
    question_id: str  # the logged question judged (which the log may since have pruned)
    question: str
    asked_confidence: str | None
    verdict: str  # ANSWERS or NOT_IN_ARCHIVE
    article_id: str | None
    start: int | None
    end: int | None
    text: str | None
    speaker: str | None
    judge: str | None
    judged_at: float
    right: bool | None  # for a confident answer: whether its first passage was right

    @property
    def wording(self) -> str:
        return normalised(self.question)


@dataclass(frozen=True)
class Logged:
    """A logged question as an editor judges it."""

    id: str
    asked_at: float
    question: str
    confidence: str
    helpful: bool | None
    shown: list[Shown] | None  # None for a question logged before the passages shown were
    reason: str


@dataclass(frozen=True)
class Queue:
    questions: list[Logged]  # most useful first
    judgments: dict[str, list[Judgment]]  # the listed questions' judgments, by wording
    waiting: int  # distinct wordings in the period without a judgment
    judged: int  # judgments in all


@dataclass(frozen=True)
class Week:
    week_start: str  # YYYY-MM-DD, a Monday (UTC)
    confident_judged: int
    confident_right: int
    precision: float | None


@dataclass(frozen=True)
class Summary:
    weeks: list[Week]  # this week first
    judged: int
    not_in_archive: int


class JudgmentStore:
    """The judgments table, through the question log's own connections and locks."""

    def __init__(self, log: QuestionLog) -> None:
        self._log = log

    def asked(self, question_id: str) -> Logged | None:
        """The logged question `question_id`, or None (never logged, or pruned)."""
        with self._log.reading() as db:
            row = db.execute(f"{_LOGGED} WHERE id = ?", (question_id,)).fetchone()
        return None if row is None else _logged(row)

    def queue(self, days: int, limit: int, include_judged: bool = False, now: float | None = None) -> Queue:
        """The questions of the last `days` waiting for an editor, one per wording (case and
        punctuation aside): unanswered first, then marked not helpful, then low confidence,
        then the confident ones; the newest first within each. A wording judged already is
        left out unless `include_judged`. A wording asked for several reasons is listed for
        the most useful, as its latest asking for it."""
        since = (now or time.time()) - days * DAY_S
        with self._log.reading() as db:
            latest = db.execute(_LATEST_PER_REASON, (since,)).fetchall()
            judgments = read_judgments(db)
        judged = _by_wording(judgments)
        best: dict[str, tuple[int, float, str]] = {}
        for question_id, question, reason, asked_at in latest:
            key, candidate = normalised(question), (reason, -asked_at, question_id)
            if key not in best or candidate < best[key]:
                best[key] = candidate
        chosen = sorted(c for key, c in best.items() if include_judged or key not in judged)[:limit]
        with self._log.reading() as db:
            rows = [db.execute(f"{_LOGGED} WHERE id = ?", (c[2],)).fetchone() for c in chosen]
        listed = [_logged(row) for row in rows if row is not None]
        return Queue(
            questions=listed,
            judgments={normalised(q.question): judged.get(normalised(q.question), []) for q in listed},
            waiting=sum(key not in judged for key in best),
            judged=len(judgments),
        )

    def add(self, logged: Logged, verdict: str, span: Span | None, judge: str | None,
            now: float | None = None) -> Judgment:
        """Store a verdict on `logged`. It replaces the opposite verdicts on the same wording
        (an 'answers' removes a 'not_in_archive', and the reverse) and the same verdict on the
        same span; other spans that answer are kept (any one of them answers)."""
        right = was_right(logged, verdict, span)
        values = (logged.id, logged.question, logged.confidence, verdict,
                  *((span.article_id, span.start, span.end, span.text, span.speaker) if span else (None,) * 5),
                  judge, now or time.time(), None if right is None else int(right))
        key = normalised(logged.question)
        with self._log.writing() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                gone = [(j.id,) for j in read_judgments(db) if j.wording == key and _replaced(j, verdict, span)]
                db.executemany("DELETE FROM judgments WHERE id = ?", gone)
                inserted = f"INSERT INTO judgments ({_COLUMNS}) VALUES (NULL{', ?' * 12})"
                added = db.execute(inserted, values).lastrowid
                row = db.execute(f"SELECT {_COLUMNS} FROM judgments WHERE id = ?", (added,)).fetchone()
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return _judgment(row)

    def remove(self, judgment_id: int) -> Judgment | None:
        """Undo a judgment: the one removed, or None if there is none."""
        with self._log.writing() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM judgments WHERE id = ?", (judgment_id,)).fetchone()
            db.execute("DELETE FROM judgments WHERE id = ?", (judgment_id,))
        return None if row is None else _judgment(row)

    def all(self, since: float | None = None) -> list[Judgment]:
        with self._log.reading() as db:
            return read_judgments(db, since)


def was_right(logged: Logged, verdict: str, span: Span | None) -> bool | None:
    """Whether a confident answer was right by this verdict: its first passage shown is in the
    judged article and overlaps the span. None when it was not confident, or when what it
    showed was not logged (asked before the log kept the passages shown)."""
    if logged.confidence != "high" or logged.shown is None:
        return None
    if verdict != ANSWERS or span is None or not logged.shown:
        return False
    article_id, start, end = logged.shown[0]
    return article_id == span.article_id and start < span.end and span.start < end


def _replaced(old: Judgment, verdict: str, span: Span | None) -> bool:
    """Whether a new verdict (on the same wording) replaces `old`."""
    if verdict == NOT_IN_ARCHIVE or old.verdict == NOT_IN_ARCHIVE:
        return True
    return span is not None and (old.article_id, old.start, old.end) == (span.article_id, span.start, span.end)


def read_judgments(db: sqlite3.Connection, since: float | None = None) -> list[Judgment]:
    """Every judgment (judged since `since`), in the order they were made."""
    rows = db.execute(f"SELECT {_COLUMNS} FROM judgments WHERE judged_at >= ? ORDER BY judged_at, id",
                      (since or 0.0,)).fetchall()
    return [_judgment(row) for row in rows]


def _judgment(row: tuple) -> Judgment:
    *fields, right = row
    return Judgment(*fields, right=None if right is None else bool(right))


def _logged(row: tuple) -> Logged:
    question_id, asked_at, question, confidence, helpful, shown, reason = row
    return Logged(question_id, asked_at, question, confidence, None if helpful is None else bool(helpful),
                  None if shown is None else [tuple(passage) for passage in json.loads(shown)], REASONS[reason])


def _by_wording(judgments: list[Judgment]) -> dict[str, list[Judgment]]:
    grouped: dict[str, list[Judgment]] = {}
    for judgment in judgments:
        grouped.setdefault(judgment.wording, []).append(judgment)
    return grouped


def summarised(judgments: list[Judgment], weeks: int, now: float) -> Summary:
    """How often confident answers were right in each of the last `weeks` weeks (Monday to
    Sunday, UTC; this week first). A confident answer counts once, in the week it was last
    judged, and is right when any span judged to answer its question overlaps its first passage."""
    verdicts: dict[str, tuple[float, bool]] = {}
    for judgment in judgments:
        if judgment.right is not None:
            when, right = verdicts.get(judgment.question_id, (0.0, False))
            verdicts[judgment.question_id] = (max(when, judgment.judged_at), right or judgment.right)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    counted = []
    for back in range(weeks):
        start = monday - dt.timedelta(weeks=back)
        begin = calendar.timegm(start.timetuple())
        marks = [right for when, right in verdicts.values() if begin <= when < begin + 7 * DAY_S]
        precision = round(sum(marks) / len(marks), 4) if marks else None
        counted.append(Week(start.isoformat(), len(marks), sum(marks), precision))
    return Summary(counted, len(judgments), sum(j.verdict == NOT_IN_ARCHIVE for j in judgments))


def eval_rows(judgments: list[Judgment]) -> list[dict]:
    """One row per wording (case and punctuation aside) in index/evaluate.py's format, as its
    latest judgment has it: not in the archive -> {"question", "out_of_scope": true}; answered
    -> {"question", "article", "must_contain_any", "speaker" when all its spans share one}.
    Spans in several articles: the article with the most (the first judged on ties)."""
    rows = []
    for judged in _by_wording(judgments).values():
        latest = judged[-1]
        spans = [j for j in judged if j.verdict == ANSWERS and j.article_id and j.text]
        if latest.verdict == NOT_IN_ARCHIVE:
            rows.append({"question": latest.question, "out_of_scope": True})
        elif spans:
            counts = Counter(j.article_id for j in spans)
            article = max(counts, key=counts.__getitem__)  # the first of the most: first judged
            own = [j for j in spans if j.article_id == article]
            row = {"question": latest.question, "article": article,
                   "must_contain_any": list(dict.fromkeys(j.text for j in own))}
            speakers = {j.speaker for j in own}
            if len(speakers) == 1 and None not in speakers:
                row["speaker"] = speakers.pop()
            rows.append(row)
    return rows


def half_of(row: dict) -> str:
    """"fit" or "check": a row's half, from a hash of its wording (case and punctuation aside),
    so a question stays in its half however many are judged after it."""
    digest = hashlib.sha256(normalised(row["question"]).encode("utf-8")).digest()
    return HALVES[digest[0] % 2]


def ndjson(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


class LogMissing(QAError):
    """No question log where one was looked for."""


def read_log(path: Path, since: float | None = None) -> list[Judgment]:
    """The judgments in the question log at `path` (none in a log older than judgments)."""
    if not path.is_file():
        raise LogMissing(f"no question log at {path}: the service writes it there once readers ask "
                         "(QA_QUESTION_LOG_PATH), or give --log PATH or --index DIR")
    db = sqlite3.connect(path)
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return read_judgments(db, since) if "judgments" in tables else []
    finally:
        db.close()


def _log_path(args: argparse.Namespace) -> Path:
    """--log, else questions.sqlite beside --index, else the service's setting."""
    from qa_service.settings import ServiceSettings  # the service's defaults, only when needed

    if args.log:
        return args.log
    if args.index:
        return args.index.parent / "questions.sqlite"
    return ServiceSettings().question_log_file


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa-judgments",
                                     description="Editors' judgments of readers' questions.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export", help="write the judgments as an evaluation set, the format qa-eval and qa-calibrate read",
    )
    where = export.add_mutually_exclusive_group()
    where.add_argument("--log", type=Path, help="the question log (default: $QA_QUESTION_LOG_PATH, or "
                       "questions.sqlite beside the index folder)")
    where.add_argument("--index", type=Path, help="index folder: the log is questions.sqlite beside it")
    export.add_argument("--out", default="-",
                        help="the JSONL file to write, or - for standard output (the default)")
    export.add_argument("--since-days", type=_positive_int, help="only the judgments of the last N days")
    export.add_argument("--half", choices=HALVES, help="only one half of the questions, split by a hash "
                        "of each wording: fit a calibration on one, report on the other")
    return parser


def main(argv: list[str] | None = None) -> int:
    from index.cli import run_cli  # the CLIs show errors the same way

    args = _parser().parse_args(argv)

    def body() -> int:
        since = None if args.since_days is None else time.time() - args.since_days * DAY_S
        try:
            rows = eval_rows(read_log(_log_path(args), since))
        except sqlite3.Error as exc:
            raise QAError(f"the question log cannot be read: {exc}") from exc
        if args.half:
            rows = [row for row in rows if half_of(row) == args.half]
        text = ndjson(rows)
        if args.out == "-":
            sys.stdout.write(text)
        else:
            Path(args.out).write_text(text, encoding="utf-8")
        out_of_scope = sum(bool(row.get("out_of_scope")) for row in rows)
        print(f"qa-judgments: {len(rows)} rows written: {len(rows) - out_of_scope} answerable, "
              f"{out_of_scope} not in the archive", file=sys.stderr)
        return 0

    return run_cli("qa-judgments", body)
