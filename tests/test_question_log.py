"""The question log through the real app: questions asked are logged (no address), feedback
refers to an answer that must exist, insights need the token and group what went unanswered;
and the log survives `kill -9` of a real `qa-serve`."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.encoder import Encoder
from qa_service.app import create_app
from qa_service.question_log import EMBEDDED_PER_CALL, SIMILAR, QuestionLog
from qa_service.settings import ServiceSettings
from tests.conftest import SAMPLE_ARTICLES, free_port, start_qa_serve

TOKEN = "insights-token-5678"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(sample_index: Path, encoder: Encoder, tmp_path: Path):
    settings = ServiceSettings(index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, admin_token=TOKEN,
                               question_log_path=tmp_path / "questions.sqlite", ask_rate_per_minute=0)
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        yield test_client


def test_questions_feedback_and_insights(client: TestClient, tmp_path: Path) -> None:
    asked = [client.post("/ask", json={"question": q}).json() for q in (
        "Who argues against means-testing?",
        "who argues against means testing",  # the same question, asked differently
        "Who won the 2018 FIFA World Cup?",  # nothing found
        "Which team won the football World Cup in 2018?",  # nothing found, worded otherwise
        "How much have A&E visits gone up?",
    )]
    assert all(len(a["answer_id"]) == 32 for a in asked)
    assert [a["confidence"] for a in asked][2:4] == ["none", "none"]

    # Feedback: on an answer that exists, the last word counts; anything else is refused.
    helped = client.post("/feedback", json={"answer_id": asked[4]["answer_id"], "helpful": True})
    assert helped.status_code == 200 and helped.json() == {"answer_id": asked[4]["answer_id"], "helpful": True}
    assert client.post("/feedback", json={"answer_id": asked[4]["answer_id"], "helpful": False}).status_code == 200
    assert client.post("/feedback", json={"answer_id": "0" * 32, "helpful": True}).status_code == 404
    assert client.post("/feedback", json={"answer_id": "../x", "helpful": True}).status_code == 422
    assert client.post("/feedback", json={"answer_id": asked[0]["answer_id"]}).status_code == 422

    # Insights: only with the token.
    assert client.get("/admin/insights").status_code == 401
    assert client.get("/admin/insights", headers={"Authorization": "Bearer wrong"}).status_code == 401
    insights = client.get("/admin/insights", headers=AUTH).json()
    assert insights["questions"] == 5
    assert insights["most_asked"][0] == {"question": "Who argues against means-testing?", "count": 2}
    unanswered = {g["question"]: g for g in insights["unanswered"]}
    world_cup = [g for g in insights["unanswered"] if "World Cup" in g["question"]]
    assert len(world_cup) == 1 and world_cup[0]["count"] == 2  # the two wordings are one group
    assert "How much have A&E visits gone up?" in unanswered  # marked not helpful
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert insights["per_day"] == [{"day": today, "questions": 5, "unanswered": 3}]

    # What is stored: the question, never who asked.
    with sqlite3.connect(tmp_path / "questions.sqlite") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(questions)")]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert columns == ["id", "asked_at", "question", "confidence", "articles", "took_ms", "helpful", "shown"]


def test_log_off_and_feedback_rate_limit(sample_index: Path, encoder: Encoder, tmp_path: Path) -> None:
    off = ServiceSettings(index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, admin_token=TOKEN,
                          question_log_days=0, question_log_path=tmp_path / "off.sqlite", ask_rate_per_minute=0)
    with TestClient(create_app(off, encoder=encoder)) as client:
        assert client.post("/ask", json={"question": "Who argues against means-testing?"}).json()["answer_id"] is None
        assert client.post("/feedback", json={"answer_id": "a" * 32, "helpful": True}).status_code == 409
        assert client.get("/admin/insights", headers=AUTH).status_code == 409
    assert not (tmp_path / "off.sqlite").exists()

    limited = ServiceSettings(index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, question_log_path=tmp_path / "q.sqlite",
                              ask_rate_per_minute=1, ask_burst=2)
    with TestClient(create_app(limited, encoder=encoder)) as client:
        answer = client.post("/ask", json={"question": "Who argues against means-testing?"}).json()["answer_id"]
        codes = [client.post("/feedback", json={"answer_id": answer, "helpful": True}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]


@pytest.mark.slow
def test_the_log_survives_kill_9(sample_index: Path, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "questions.sqlite"
    server = start_qa_serve(SAMPLE_ARTICLES, sample_index, port, tmp_path / "serve.log",
                            QA_QUESTION_LOG_PATH=str(log))
    try:
        for number in range(20):
            body = json.dumps({"question": f"Who argues against means-testing? ({number})"}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/ask", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    with sqlite3.connect(log) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM questions").fetchone()[0] == 20


# Unanswered questions worded several ways (the first, asked most, leads its group). With
# all-MiniLM-L6-v2 each wording is at a cosine of at least 0.81 from the first and under 0.35
# from other groups'; another model may put a wording further than `SIMILAR` from its first
# (all-mpnet-base-v2: "Last night's lottery results?", 0.75), and it is then not grouped.
SIMILAR_WORDINGS = {
    "cup": ["Who won the 2018 FIFA World Cup?", "Which team won the football World Cup in 2018?",
            "who won the world cup in 2018", "Who were the 2018 World Cup winners?"],
    "weather": ["What will the weather be like tomorrow?", "What is the weather forecast for tomorrow?",
                "Tomorrow's weather forecast?", "what's the weather tomorrow"],
    "lottery": ["What were last night's lottery numbers?", "Which lottery numbers were drawn last night?",
                "Last night's lottery results?", "lottery numbers last night"],
    "bread": ["How do I bake sourdough bread?", "What is a good recipe for sourdough bread?",
              "How to make sourdough bread at home?", "sourdough bread recipe"],
    # Found something, but readers said it did not help.
    "strike": ["When is the next train strike?", "When is the next rail strike?",
               "Are the trains on strike next week?", "date of the next train strike"],
}


def _fill_large_log(log: QuestionLog) -> tuple[int, int]:
    """Thousands of rows as /ask and /feedback write them: answered questions, the groups
    above, and 2,000 unanswered questions asked once each. The rows and distinct unanswered
    wordings written."""
    rng = random.Random(32)
    rows = 0
    for number in range(5000):
        log.record(f"Who argues against means-testing? ({number % 50})", "low", ["000_b56ffdfc634a8662"], 5.0)
        rows += 1
    words = ["violin", "glacier", "mortgage", "penguin", "satellite", "chess", "volcano", "yoga", "jazz",
             "tax return", "passport", "marathon", "orchid", "submarine", "bitcoin", "opera", "cricket",
             "telescope", "vaccine", "wallpaper", "kayak", "sushi", "tornado", "pottery", "dinosaur"]
    noise = {f"{rng.choice(['How', 'Why', 'Where', 'When'])} {rng.choice(['do', 'can', 'should'])} I "
             f"{rng.choice(['buy', 'fix', 'learn', 'paint', 'sell'])} a {a} and a {b} number {n}?"
             for n in range(2000) for a, b in [rng.sample(words, 2)]}
    for question in noise:
        log.record(question, "none", [], 4.0)
        rows += 1
    for name, wordings in SIMILAR_WORDINGS.items():
        for position, wording in enumerate(wordings):
            for _ in range(6 if position == 0 else 3):
                if name == "strike":
                    answer = log.record(wording, "low", ["003_34ccfc135a31d0e8"], 6.0)
                    assert log.feedback(answer, helpful=False)
                else:
                    log.record(wording, "none", [], 4.0)
                rows += 1
    return rows, len(noise) + sum(len(w) for w in SIMILAR_WORDINGS.values())


@pytest.mark.slow
def test_insights_group_similar_questions_of_a_large_log(
    sample_index: Path, encoder: Encoder, tmp_path: Path
) -> None:
    path = tmp_path / "questions.sqlite"
    log = QuestionLog(path, 30)
    rows, distinct = _fill_large_log(log)
    log.close()
    settings = ServiceSettings(index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, admin_token=TOKEN,
                               question_log_path=path, ask_rate_per_minute=0, insights_sample=120)
    calls, kept = [], []
    with TestClient(create_app(settings, encoder=encoder)) as client:
        for _ in range(3):
            calls.append(client.get("/admin/insights", headers=AUTH).json())
            with sqlite3.connect(path) as db:
                kept.append(db.execute("SELECT COUNT(*) FROM question_vectors").fetchone()[0])
    # One call embeds at most EMBEDDED_PER_CALL (100) questions, the most asked first, and keeps
    # their vectors: the second has all 120, the third embeds nothing and answers the same.
    assert [call["grouped"] for call in calls] == kept == [EMBEDDED_PER_CALL, 120, 120]
    found = calls[2]
    assert calls[1] == found

    assert found["questions"] == rows and sum(day["questions"] for day in found["per_day"]) == rows
    assert found["unanswered_wordings"] == distinct
    # Each set of similar wordings is one group, led by its most asked wording, with all the
    # askings of the wordings the model puts within `SIMILAR` of it (most or all of them); no
    # group mixes two sets.
    groups = found["unanswered"]
    set_of = {wording: name for name, wordings in SIMILAR_WORDINGS.items() for wording in wordings}
    counts = []
    for name, wordings in SIMILAR_WORDINGS.items():
        vectors = encoder.encode_questions(wordings)
        close = [w for w, cosine in zip(wordings[1:], vectors[1:] @ vectors[0]) if cosine >= SIMILAR]
        assert len(close) >= 2, f"{name}: the wordings are not paraphrases to this model"
        group = next(g for g in groups if g["question"] == wordings[0])
        assert group["count"] == 6 + 3 * len(close)
        assert sorted(group["examples"]) == sorted(close)
        counts.append(group["count"])
    for group in groups:
        if group["question"] in set_of:
            assert {set_of.get(example) for example in group["examples"]} <= {set_of[group["question"]]}
    # The questions asked once (some of them alike) come after the five.
    assert {g["question"] for g in groups[:5]} == {wordings[0] for wordings in SIMILAR_WORDINGS.values()}
    assert [g["count"] for g in groups[:5]] == sorted(counts, reverse=True)
    assert all(g["count"] < 5 for g in groups[5:])
    assert found["most_asked"][0]["count"] == 100
