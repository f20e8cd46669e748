"""How long `GET /admin/insights` takes on a large question log: the real app (TestClient) on an
index, its question log filled with `--questions` rows over the last 30 days, `--unanswered`
of them unanswered (nothing found, most worded apart: the worst case for grouping), then the
route timed five times: wall and CPU seconds (the process's, all threads: a figure the other
work on a shared machine changes less). No vector is kept at first: each call embeds at most
100 of the grouped questions (`EMBEDDED_PER_CALL`), so the third call has all 300 and the
later ones embed nothing.

    python -m bench insights --index IDX [--questions 100000 --unanswered 20000] [--publish]

Prints the figures as JSON, then the table; with --publish the table is written into its block
of docs/reliability.md (`insights`).
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

from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish

TOKEN = "bench-insights-token"
DAY_S = 86_400
TARGET_S = 2.0  # issue 32: a call within 2 s on a log of 100,000 questions

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


def _seconds(calls: list[dict]) -> str:
    return ", ".join(f"{call['wall_s']:.2f}" for call in calls) + " s" if calls else ""


def table(results: dict) -> str:
    """The run as the `insights` block: the log's size, the unanswered rows (distinct), the calls
    that embedded questions (those that grouped more than the call before) and those after."""
    calls = results["calls"]
    grouped = [call["grouped"] for call in calls]
    embedded = [count - (grouped[n - 1] if n else 0) for n, count in enumerate(grouped)]
    first, rest = [c for c, e in zip(calls, embedded) if e > 0], [c for c, e in zip(calls, embedded) if e <= 0]
    each = sorted({e for e in embedded if e > 0})
    embeds = f"each embeds {each[0]}" if len(each) == 1 else "embedding " + ", ".join(str(e) for e in embedded if e > 0)
    headers = ["`GET /admin/insights`, question log of", "unanswered (distinct)",
               f"first {len(first)} calls ({embeds} of the {max(grouped, default=0)} grouped)",
               f"the next {len(rest)}", "target"]
    row = [f"{results['questions']:,} questions",
           f"{results['unanswered_rows']:,} ({results['unanswered_wordings']:,})",
           _seconds(first), _seconds(rest), f"{TARGET_S:g} s"]
    slowest = max((call["wall_s"] for call in calls), default=0.0)
    return markdown_table(headers, [row]) + (
        f"\n\nThe real app through TestClient; load average {results['load_average']} at the end. "
        f"Slowest call {slowest:.2f} s: target {'met' if slowest <= TARGET_S else 'not met'}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench insights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=100_000)
    parser.add_argument("--unanswered", type=int, default=20_000)
    parser.add_argument("--sample", type=int, help="QA_INSIGHTS_SAMPLE (default: the service's)")
    add_publish_arguments(parser, "insights")
    args = parser.parse_args(argv)
    results = measure(args.index, args.questions, args.unanswered, args.sample)
    print(json.dumps(results, indent=1))
    print_and_publish(args, "insights", argv, [Table("insights", table(results), "## Insights: current figures")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
