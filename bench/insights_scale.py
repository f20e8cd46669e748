"""How long `GET /admin/insights` takes on a large question log: the real app (TestClient) on an
index, its question log filled with `--questions` rows over the last 30 days, `--unanswered`
of them unanswered (nothing found, most worded apart: the worst case for grouping), then the
route timed five times: wall and CPU seconds (the process's, all threads: a figure the other
work on a shared machine changes less). No vector is kept at first: each call embeds at most
100 of the grouped questions (`EMBEDDED_PER_CALL`), so the third call has all 300 and the
later ones embed nothing.

    python -m bench insights --index IDX [--questions 100000 --unanswered 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

TOKEN = "bench-insights-token"
DAY_S = 86_400

SUBJECTS = [
    "the bus lanes", "council tax", "the new library", "school meals", "the hospital car park",
    "bin collections", "the river crossing", "social care funding", "the housing waiting list",
    "potholes", "the mayor's budget", "the leisure centre", "flood defences", "the tram extension",
    "street lighting", "the high street", "student housing", "the recycling centre", "GP surgeries",
    "the football stadium", "cycle paths", "the airport expansion", "care homes", "parking permits",
    "the night-time economy", "allotments", "the water company", "the local elections",
    "the police station", "youth clubs", "the town hall", "energy bills", "the ring road",
    "the harbour", "the museum", "broadband", "the market", "planning permission", "the zoo",
    "the park-and-ride",
]
ASKING = [
    "What is happening with {s}?", "Who decided on {s}?", "When will {s} be finished?",
    "How much does {s} cost?", "Why was {s} changed?", "Is there any news about {s}?",
    "What do residents think of {s}?", "Who is responsible for {s}?", "Where can I complain about {s}?",
    "Has anyone written about {s}?",
]
DETAILS = ["", " this year", " in 2025", " near me", " in the north of town", " after the vote",
           " for families", " at weekends", " since the election", " for pensioners"]


def unanswered_question(rng: random.Random) -> str:
    """One of about 40 x 10 x 10 x 50 wordings: many distinct, in groups of similar ones."""
    asked = rng.choice(ASKING).format(s=rng.choice(SUBJECTS))[:-1] + rng.choice(DETAILS)
    return f"{asked}?" if rng.random() < 0.2 else f"{asked} (#{rng.randrange(50)})?"


def fill(log_path: Path, questions: int, unanswered: int, answered_pool: list[str], seed: int = 1) -> int:
    """Write the rows as `QuestionLog.record` does, spread over the last 30 days; the number
    of distinct unanswered wordings."""
    from qa_service.question_log import QuestionLog, normalised

    QuestionLog(log_path, 30).close()  # the log's own schema
    rng = random.Random(seed)
    now = time.time()
    rows, missed = [], set()
    for number in range(questions):
        if number < unanswered:
            question, confidence = unanswered_question(rng), "none"
            missed.add(normalised(question))
        else:
            question, confidence = rng.choice(answered_pool), rng.choice(["high", "low", "low"])
        rows.append((uuid.uuid4().hex, now - rng.random() * 29 * DAY_S, question, confidence,
                     json.dumps(["some-article"]), round(rng.uniform(3, 40), 2), None))
    rng.shuffle(rows)
    with sqlite3.connect(log_path) as db:
        db.executemany("INSERT INTO questions VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(missed)


def answered_questions(count: int = 3000, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    starts = ["Who argues against", "What does the article say about", "Who supports", "Why is there",
              "How much has changed in", "What did the minister say about"]
    topics = ["means-testing", "the NHS", "councils", "kitchen replacements", "A&E visits", "the budget",
              "personal budgets", "social care", "taxation", "co-operatives", "ministers", "universal credit"]
    return [f"{rng.choice(starts)} {rng.choice(topics)}{'' if i % 3 else '?'} {i % 500}" for i in range(count)]


def measure(index: Path, questions: int, unanswered: int, sample: int | None, args_calls: int = 5) -> dict:
    from fastapi.testclient import TestClient

    from index.encoder import Encoder
    from qa_service.app import create_app
    from qa_service.settings import ServiceSettings

    with tempfile.TemporaryDirectory(prefix="qa-insights-bench-") as folder:
        log_path = Path(folder) / "questions.sqlite"
        started = time.perf_counter()
        wordings = fill(log_path, questions, unanswered, answered_questions())
        filled_s = time.perf_counter() - started
        extra = {"insights_sample": sample} if sample else {}
        settings = ServiceSettings(index_dir=index, admin_token=TOKEN, question_log_path=log_path,
                                   ask_rate_per_minute=0, **extra)
        encoder = Encoder.for_settings(settings, settings.query_threads)
        calls, found = [], {}
        with TestClient(create_app(settings, encoder=encoder)) as client:
            for _ in range(args_calls):
                started, cpu = time.perf_counter(), time.process_time()
                response = client.get("/admin/insights?days=30", headers={"Authorization": f"Bearer {TOKEN}"})
                assert response.status_code == 200, response.text
                found = response.json()
                calls.append({"wall_s": round(time.perf_counter() - started, 3),
                              "cpu_s": round(time.process_time() - cpu, 3), "grouped": found["grouped"]})
    return {
        "questions": found["questions"],
        "unanswered_rows": unanswered,
        "unanswered_wordings": found["unanswered_wordings"],
        "distinct_unanswered_written": wordings,
        "groups_shown": len(found["unanswered"]),
        "largest_group": found["unanswered"][0] if found["unanswered"] else None,
        "fill_s": round(filled_s, 1),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "calls": calls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=100_000)
    parser.add_argument("--unanswered", type=int, default=20_000)
    parser.add_argument("--sample", type=int, help="QA_INSIGHTS_SAMPLE (default: the service's)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.index, args.questions, args.unanswered, args.sample), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
