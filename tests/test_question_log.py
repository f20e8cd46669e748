"""The question log through the real app: questions asked are logged (no address), feedback
refers to an answer that must exist, insights need the token and group what went unanswered;
and the log survives `kill -9` of a real `qa-serve`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.encoder import Encoder
from qa_service.app import create_app
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
    assert columns == ["id", "asked_at", "question", "confidence", "articles", "took_ms", "helpful"]


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
