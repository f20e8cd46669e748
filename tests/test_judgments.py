"""Editors judge what readers asked, through the real app: questions asked through /ask are
logged with the passages shown; the judging queue lists them most useful first; judgments of a
shown passage or of a span found in the article, "not in the archive", undo, and what is
refused; how often confident answers were right; an old log migrated in place; and the
judgments exported as an evaluation set that qa-eval reads."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.encoder import Encoder
from index.evaluate import parse_eval_set
from qa_service.app import create_app
from qa_service.judgments import half_of
from qa_service.question_log import QuestionLog
from qa_service.settings import ServiceSettings
from tests.conftest import ANSWERING_PRECISION, REPO, SAMPLE_ARTICLES

TOKEN = "judging-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIN = Path(sys.executable).parent
MEANS_TESTING = "000_b56ffdfc634a8662"
A_AND_E = "004_5c6a985d3e91dfe9"
NOT_A_QUESTION = "0" * 32


def _settings(sample_index: Path, log: Path, **extra) -> ServiceSettings:
    return ServiceSettings(index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, admin_token=TOKEN,
                           question_log_path=log, ask_rate_per_minute=0,
                           target_precision=ANSWERING_PRECISION, **extra)


@pytest.fixture
def client(sample_index: Path, encoder: Encoder, tmp_path: Path):
    settings = _settings(sample_index, tmp_path / "questions.sqlite")
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        yield test_client


def _ask(client: TestClient, question: str, confidence: str) -> dict:
    answer = client.post("/ask", json={"question": question}).json()
    assert answer["confidence"] == confidence, (question, answer["confidence"])
    return answer


def _judge(client: TestClient, question_id: str, verdict: str, article_id: str | None = None,
           start: int | None = None, end: int | None = None, **extra):
    body = {"question_id": question_id, "verdict": verdict, **extra}
    if article_id is not None:
        body |= {"article_id": article_id, "start": start, "end": end}
    return client.post("/admin/judgments", json=body, headers=AUTH)


def _queue(client: TestClient, **params) -> dict:
    response = client.get("/admin/judging", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _judgment_ids(client: TestClient) -> list[list[int]]:
    """Each listed question's judgments, judged ones listed too."""
    return [[j["id"] for j in q["judgments"]] for q in _queue(client, include_judged="true")["questions"]]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_the_queue_lists_logged_questions_most_useful_first(client: TestClient, tmp_path: Path) -> None:
    means = _ask(client, "Who argues against means-testing?", "high")
    again = _ask(client, "who argues against means testing", "high")  # the same wording, asked later
    _ask(client, "Who won the 2018 FIFA World Cup?", "none")
    _ask(client, "What does the article say about waiting times?", "low")
    a_and_e = _ask(client, "How much have A&E visits gone up?", "high")
    unhelpful = {"answer_id": a_and_e["answer_id"], "helpful": False}
    assert client.post("/feedback", json=unhelpful).status_code == 200
    unanswered = _ask(client, "Which team won the football World Cup in 2018?", "none")

    # What is logged: the passages shown, as offsets, in rank order.
    with sqlite3.connect(tmp_path / "questions.sqlite") as db:
        (logged,) = db.execute("SELECT shown FROM questions WHERE id = ?", (means["answer_id"],)).fetchone()
    shown = json.loads(logged)
    assert shown == [[p["article_id"], p["start"], p["end"]] for p in means["passages"]]

    assert client.get("/admin/judging").status_code == 401
    queue = _queue(client)
    listed = [(q["question"], q["reason"]) for q in queue["questions"]]
    assert listed == [
        ("Which team won the football World Cup in 2018?", "unanswered"),  # the newest unanswered first
        ("Who won the 2018 FIFA World Cup?", "unanswered"),
        ("How much have A&E visits gone up?", "not_helpful"),
        ("What does the article say about waiting times?", "low_confidence"),
        ("who argues against means testing", "confident"),  # one per wording: its latest asking
    ]
    assert queue["waiting"] == 5 and queue["judged"] == 0
    assert queue["questions"][0]["question_id"] == unanswered["answer_id"]
    assert queue["questions"][0]["passages"] == [] and queue["questions"][0]["helpful"] is None
    assert queue["questions"][2]["helpful"] is False and queue["questions"][2]["confidence"] == "high"

    # The passages are those /ask showed, resolved against the index: text, title, speaker.
    confident = queue["questions"][4]
    assert confident["question_id"] == again["answer_id"]
    fields = ("rank", "article_id", "title", "section", "speaker", "start", "end", "text")
    assert confident["passages"] == [{k: p[k] for k in fields} for p in again["passages"]]
    assert confident["passages"][0]["speaker"] == "Simon Duffy"
    assert len(_queue(client, limit=2)["questions"]) == 2
    assert client.get("/admin/judging", params={"limit": 0}, headers=AUTH).status_code == 422


def test_judging_a_passage_a_span_and_not_in_the_archive(client: TestClient) -> None:
    means = _ask(client, "Who argues against means-testing?", "high")
    first = means["passages"][0]
    judged = _judge(client, means["answer_id"], "answers", first["article_id"], first["start"], first["end"],
                    judge="Ana")
    assert judged.status_code == 201, judged.text
    answer = judged.json()
    assert answer["text"] == first["text"] and answer["speaker"] == "Simon Duffy" and answer["judge"] == "Ana"
    assert answer["right"] is True  # confident, and its first passage is the one judged
    assert answer["question"] == "Who argues against means-testing?" and answer["verdict"] == "answers"

    # A span the editor found in the article: the whitespace around it is left out.
    text = client.get(f"/articles/{MEANS_TESTING}").json()["text"]
    sentence = "There is no moral case for social care means-testing."
    at = text.index(sentence)
    assert text[at - 1] == " " and text[at + len(sentence)] == " "
    span = _judge(client, means["answer_id"], "answers", MEANS_TESTING, at - 1, at + len(sentence) + 1).json()
    assert (span["start"], span["end"], span["text"]) == (at, at + len(sentence), sentence)
    assert span["speaker"] == "Simon Duffy" and span["right"] is True  # it overlaps the first passage

    # Judged: the wording leaves the queue, whichever way it is asked.
    _ask(client, "who argues against means testing", "high")
    assert _queue(client)["questions"] == [] and _queue(client)["judged"] == 2
    assert _judgment_ids(client) == [[answer["id"], span["id"]]]

    # "Not in the archive" replaces the spans; a span replaces it in turn.
    nothing = _judge(client, means["answer_id"], "not_in_archive").json()
    assert nothing["right"] is False and nothing["article_id"] is None and nothing["text"] is None
    assert _judgment_ids(client) == [[nothing["id"]]]
    back = _judge(client, means["answer_id"], "answers", MEANS_TESTING, at, at + len(sentence)).json()
    assert _judgment_ids(client) == [[back["id"]]]

    # Undo.
    removed = client.delete(f"/admin/judgments/{back['id']}", headers=AUTH)
    assert removed.status_code == 200 and removed.json() == back
    gone = client.delete(f"/admin/judgments/{back['id']}", headers=AUTH)
    assert gone.status_code == 404 and gone.json()["detail"] == f"no judgment {back['id']}"
    waiting = _queue(client)
    assert waiting["waiting"] == 1 and [q["reason"] for q in waiting["questions"]] == ["confident"]


def test_what_a_judgment_refuses(client: TestClient) -> None:
    question_id = _ask(client, "Who argues against means-testing?", "high")["answer_id"]
    length = len(client.get(f"/articles/{MEANS_TESTING}").json()["text"])
    refused = {
        "unknown question": (_judge(client, NOT_A_QUESTION, "not_in_archive"), 404, "no question"),
        "unknown article": (_judge(client, question_id, "answers", "999_nothing", 0, 10), 404,
                            "no article '999_nothing'"),
        "past the end": (_judge(client, question_id, "answers", MEANS_TESTING, length - 5, length + 1), 422,
                         f"end ({length + 1}) is past the end of article '{MEANS_TESTING}' "
                         f"({length} characters)"),
        "end before start": (_judge(client, question_id, "answers", MEANS_TESTING, 50, 50), 422,
                             "end (50) must be after start (50)"),
        "negative start": (_judge(client, question_id, "answers", MEANS_TESTING, -1, 10), 422, "start"),
        "too long": (_judge(client, question_id, "answers", MEANS_TESTING, 0, 4001), 422, "the limit is 4000"),
        "no offsets": (_judge(client, question_id, "answers"), 422, "needs article_id, start and end"),
        "offsets on not_in_archive": (_judge(client, question_id, "not_in_archive", MEANS_TESTING, 0, 10), 422,
                                      "names no passage"),
        "bad verdict": (_judge(client, question_id, "maybe"), 422, "verdict"),
        "judge too long": (_judge(client, question_id, "not_in_archive", judge="x" * 81), 422, "judge"),
        "bad id": (_judge(client, "../x", "not_in_archive"), 422, "question_id"),
    }
    for name, (response, code, detail) in refused.items():
        assert response.status_code == code, (name, response.text)
        assert detail in response.json()["detail"], (name, response.json())
    assert _queue(client)["judged"] == 0
    assert client.delete("/admin/judgments/0", headers=AUTH).status_code == 422
    unauthorised = client.post("/admin/judgments", json={"question_id": question_id, "verdict": "not_in_archive"})
    assert unauthorised.status_code == 401


def test_summary_measures_confident_answers(client: TestClient) -> None:
    means = _ask(client, "Who argues against means-testing?", "high")
    a_and_e = _ask(client, "How much have A&E visits gone up?", "high")
    cup = _ask(client, "Who won the 2018 FIFA World Cup?", "none")
    first = means["passages"][0]
    right = _judge(client, means["answer_id"], "answers", first["article_id"], first["start"], first["end"])
    assert right.json()["right"] is True
    assert _judge(client, a_and_e["answer_id"], "not_in_archive").json()["right"] is False
    assert _judge(client, cup["answer_id"], "not_in_archive").json()["right"] is None  # not confident

    summary = client.get("/admin/judgments/summary", headers=AUTH)
    assert summary.status_code == 200, summary.text
    today = dt.datetime.now(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    assert summary.json() == {
        "weeks": [
            {"week_start": monday.isoformat(), "confident_judged": 2, "confident_right": 1, "precision": 0.5},
            {"week_start": (monday - dt.timedelta(days=7)).isoformat(), "confident_judged": 0,
             "confident_right": 0, "precision": None},
        ],
        "judged": 3, "not_in_archive": 2,
    }
    assert len(client.get("/admin/judgments/summary", params={"weeks": 5}, headers=AUTH).json()["weeks"]) == 5
    assert client.get("/admin/judgments/summary", params={"weeks": 0}, headers=AUTH).status_code == 422


@pytest.mark.slow
def test_export_round_trips_into_qa_eval(client: TestClient, sample_index: Path, tmp_path: Path) -> None:
    means = _ask(client, "Who argues against means-testing?", "high")
    a_and_e = _ask(client, "How much have A&E visits gone up?", "high")
    cup = _ask(client, "Who won the 2018 FIFA World Cup?", "none")
    first = means["passages"][0]
    _judge(client, means["answer_id"], "answers", first["article_id"], first["start"], first["end"])
    # Spans in two articles: the row names the article with the most.
    other = next(p for p in a_and_e["passages"] if p["article_id"] != A_AND_E)
    in_a_and_e = [p for p in a_and_e["passages"] if p["article_id"] == A_AND_E]
    assert len(in_a_and_e) >= 2, "the test needs two passages of the A&E article shown"
    for passage in (other, *in_a_and_e[:2]):
        _judge(client, a_and_e["answer_id"], "answers", passage["article_id"], passage["start"], passage["end"])
    _judge(client, cup["answer_id"], "not_in_archive")

    exported = client.get("/admin/judgments/export", headers=AUTH)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert rows == [
        {"question": "Who argues against means-testing?", "article": MEANS_TESTING,
         "must_contain_any": [first["text"]], "speaker": "Simon Duffy"},
        {"question": "How much have A&E visits gone up?", "article": A_AND_E,
         "must_contain_any": [p["text"] for p in in_a_and_e[:2]]},  # no speaker in that article
        {"question": "Who won the 2018 FIFA World Cup?", "out_of_scope": True},
    ]
    assert all(p["speaker"] is None for p in in_a_and_e)
    loaded = parse_eval_set(exported.text.splitlines(), "export")
    assert [(q.question, q.article, q.out_of_scope) for q in loaded.questions] == [
        (r["question"], r.get("article"), r.get("out_of_scope", False)) for r in rows
    ]

    # The console script writes the same rows, from the log beside an index folder too.
    out = tmp_path / "judged.jsonl"
    written = _run("qa-judgments", "export", "--log", str(tmp_path / "questions.sqlite"), "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert out.read_text() == exported.text
    assert "3 rows written: 2 answerable, 1 not in the archive" in written.stderr
    beside = _run("qa-judgments", "export", "--index", str(tmp_path / "index"), "--since-days", "1")
    assert beside.returncode == 0 and beside.stdout == exported.text, beside.stderr
    # --half: each wording in exactly one half, the same one each time.
    halves = {half: _run("qa-judgments", "export", "--index", str(tmp_path / "index"), "--half", half).stdout
              for half in ("fit", "check")}
    assert sorted(halves["fit"].splitlines() + halves["check"].splitlines()) == sorted(exported.text.splitlines())
    assert all(half_of(json.loads(line)) == half for half, text in halves.items() for line in text.splitlines())

    scores = _run("qa-eval", str(out), "--index", str(sample_index), "--json", "--details")
    assert scores.returncode == 0, scores.stderr
    result = json.loads(scores.stdout)
    assert result["questions"] == 3
    by_question = {d["question"]: d for d in result["details"]}
    assert by_question["Who argues against means-testing?"]["rank"] == 1
    assert by_question["Who won the 2018 FIFA World Cup?"]["abstained"]


@pytest.mark.slow
def test_export_without_a_log(tmp_path: Path) -> None:
    missing = _run("qa-judgments", "export", "--log", str(tmp_path / "nothing.sqlite"))
    assert missing.returncode == 1  # as every qa-* command answers a missing input
    assert f"qa-judgments: error: no question log at {tmp_path / 'nothing.sqlite'}" in missing.stderr
    assert "Traceback" not in missing.stderr and missing.stdout == ""


OLD_SCHEMA = """
CREATE TABLE questions (id TEXT PRIMARY KEY, asked_at REAL NOT NULL, question TEXT NOT NULL,
    confidence TEXT NOT NULL, articles TEXT NOT NULL, took_ms REAL NOT NULL, helpful INTEGER);
CREATE INDEX questions_asked_at ON questions (asked_at);
CREATE TABLE question_vectors (model TEXT NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL,
    added_at REAL NOT NULL, PRIMARY KEY (model, text));
"""


def test_an_old_log_is_migrated(sample_index: Path, encoder: Encoder, tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO questions VALUES (?, strftime('%s', 'now'), ?, 'high', ?, 5.0, NULL)",
                   ("a" * 32, "Who argues against means-testing?", json.dumps([MEANS_TESTING])))
    log = QuestionLog(path, 30)
    new_id = log.record("Who won the 2018 FIFA World Cup?", "none", [], 4.0, shown=[])
    log.close()
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(questions)")]
        rows = dict(db.execute("SELECT id, shown FROM questions"))
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert columns == ["id", "asked_at", "question", "confidence", "articles", "took_ms", "helpful", "shown"]
    assert rows == {"a" * 32: None, new_id: "[]"} and "judgments" in tables
    QuestionLog(path, 30).close()  # opening a migrated log again changes nothing

    with TestClient(create_app(_settings(sample_index, path), encoder=encoder)) as client:
        old = next(q for q in _queue(client)["questions"] if q["question_id"] == "a" * 32)
        # Logged before the passages shown were: the question is searched now.
        assert old["passages"] and old["passages"][0]["article_id"] == MEANS_TESTING
        first = old["passages"][0]
        judged = _judge(client, "a" * 32, "answers", MEANS_TESTING, first["start"], first["end"]).json()
        assert judged["right"] is None  # what it showed then is not known: not measured


def test_judging_needs_the_log(sample_index: Path, encoder: Encoder, tmp_path: Path) -> None:
    off = _settings(sample_index, tmp_path / "off.sqlite", question_log_days=0)
    with TestClient(create_app(off, encoder=encoder)) as client:
        for response in (client.get("/admin/judging", headers=AUTH),
                         _judge(client, NOT_A_QUESTION, "not_in_archive"),
                         client.get("/admin/judgments/summary", headers=AUTH),
                         client.get("/admin/judgments/export", headers=AUTH),
                         client.delete("/admin/judgments/1", headers=AUTH)):
            assert response.status_code == 409 and "QA_QUESTION_LOG_DAYS=0" in response.json()["detail"]
