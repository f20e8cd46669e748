"""The HTTP service through FastAPI's TestClient: the real app, model and index."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.confidence import CALIBRATION_FILE, Calibration, choose_calibration, save_calibration
from index.encoder import Encoder
from index.manifest import VERSIONS, current_version_name
from qa_service.app import create_app
from qa_service.settings import ServiceSettings
from tests.conftest import ANSWERING_PRECISION, SAMPLE_ARTICLES

TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MEANS_TESTING = "who argues against means-testing?"
LIGHTHOUSE_TEXT = (
    "The keepers of the Stroma lighthouse kept a logbook for ninety years.\n\n"
    "Said Mrs Agnes Rendall: \"The lamp was trimmed every evening at dusk, whatever the weather, "
    "and the logbook recorded every ship that passed through the Pentland Firth.\"\n\n"
    "The lighthouse was automated in 1996 and the keepers left the island."
)


def copy_service_dirs(root: Path, sample_index: Path) -> tuple[Path, Path]:
    articles, index = root / "articles", root / "index"
    shutil.copytree(SAMPLE_ARTICLES, articles)
    shutil.copytree(sample_index, index)  # with its vector cache: only new text is embedded
    return articles, index


def make_client(articles: Path, index: Path, encoder: Encoder, **overrides) -> TestClient:
    settings = ServiceSettings(**{
        "index_dir": index, "articles_dir": articles, "admin_token": TOKEN,
        "cors_origins": ["https://news.example.org"], "reload_interval_s": 0.2,
        "ask_rate_per_minute": 0, **overrides,
    })
    return TestClient(create_app(settings, encoder=encoder))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> tuple[Path, Path]:
    return copy_service_dirs(tmp_path_factory.mktemp("service"), sample_index)


@pytest.fixture(scope="module")
def client(dirs: tuple[Path, Path], encoder: Encoder) -> Iterator[TestClient]:
    with make_client(*dirs, encoder, target_precision=ANSWERING_PRECISION) as client:
        yield client


def wait_for_job(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/admin/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_ask_returns_cited_passages_with_every_field(client: TestClient) -> None:
    response = client.post("/ask", json={"question": MEANS_TESTING})
    assert response.status_code == 200
    body = response.json()
    assert body["abstained"] is False and body["question"] == MEANS_TESTING
    assert body["confidence"] == "high"
    assert body["index_version"] == current_version_name(Path(client.app.state.service.settings.index_dir))
    top = body["passages"][0]
    assert top["article_id"] == "000_b56ffdfc634a8662"
    assert body["answer"]["speaker"] == "Simon Duffy" and body["answer"]["citation"] == 1
    for passage in body["passages"]:
        article = client.get(f"/articles/{passage['article_id']}").json()
        # Offsets point into the article's full text, and the highlight into the passage.
        assert article["text"][passage["start"] : passage["end"]] == passage["text"]
        assert 0 <= passage["highlight"]["start"] < passage["highlight"]["end"] <= len(passage["text"])
        assert passage["title"] == article["title"] and passage["section"] in ("body", "comment")
    highlighted = top["text"][top["highlight"]["start"] : top["highlight"]["end"]]
    assert body["answer"]["text"] == highlighted
    assert [p["rank"] for p in body["passages"]] == list(range(1, len(body["passages"]) + 1))


def test_get_ask_matches_post_and_takes_filters(client: TestClient) -> None:
    posted = client.post("/ask", json={"question": MEANS_TESTING, "top_k": 3}).json()
    got = client.get("/ask", params={"q": MEANS_TESTING, "top_k": 3}).json()
    assert [p["text"] for p in got["passages"]] == [p["text"] for p in posted["passages"]]
    # A subject several articles touch: the first passages are other articles', and the filter
    # keeps one article's. (Asked in an article that never mentions it, means-testing may find
    # nothing close enough there: that says nothing about the filter.)
    subject = "money for public services"
    anywhere = client.get("/ask", params={"q": subject}).json()
    assert {p["article_id"] for p in anywhere["passages"]} - {"003_34ccfc135a31d0e8"}
    only = client.get("/ask", params={"q": subject, "article": "003_34ccfc135a31d0e8"}).json()
    assert only["passages"] and {p["article_id"] for p in only["passages"]} == {"003_34ccfc135a31d0e8"}


def test_get_ask_takes_post_s_section_and_date_filters(client: TestClient) -> None:
    question = "money for public services"

    def passages(body: dict) -> list[tuple[str, int, str]]:
        return [(p["article_id"], p["start"], p["section"]) for p in body["passages"]]

    cases = [  # POST's filters, and the same as GET's query parameters (lists repeated)
        ({"sections": ["comment"]}, {"section": "comment"}),
        ({"sections": ["body"], "article_ids": ["003_34ccfc135a31d0e8", "001_af1d1ee797eafa4c"]},
         {"section": "body", "article": ["003_34ccfc135a31d0e8", "001_af1d1ee797eafa4c"]}),
        ({"date_from": "2000-01-01"}, {"date_from": "2000-01-01"}),
        ({"date_to": "2030-12-31", "sections": ["body", "comment"]},
         {"date_to": "2030-12-31", "section": ["body", "comment"]}),
    ]
    got = []
    for filters, query in cases:
        posted = client.post("/ask", json={"question": question, "filters": filters}).json()
        got.append(client.get("/ask", params={"q": question, **query}).json())
        assert passages(got[-1]) == passages(posted)
    comments, bodies, since, until = got
    assert comments["passages"] and {p["section"] for p in comments["passages"]} == {"comment"}
    assert bodies["passages"] and {p["section"] for p in bodies["passages"]} == {"body"}
    assert {p["article_id"] for p in bodies["passages"]} <= {"003_34ccfc135a31d0e8", "001_af1d1ee797eafa4c"}
    # The sample's articles carry no date, so a date filter leaves none of them.
    assert since["abstained"] and until["abstained"]

    for bad, says in (({"date_to": "2021-02-30"}, "date_to"), ({"section": "footer"}, "section")):
        response = client.get("/ask", params={"q": question, **bad})
        assert response.status_code == 422 and says in response.json()["detail"]


def test_out_of_scope_question_abstains(client: TestClient) -> None:
    body = client.post("/ask", json={"question": "What is the boiling point of tungsten?"}).json()
    assert body["abstained"] is True and body["passages"] == [] and body["answer"] is None
    assert body["confidence"] == "none"


@pytest.mark.parametrize(
    ("request_kwargs", "code", "says"),
    [
        ({"json": {"question": ""}}, 422, "question: String should have at least 1 character"),
        ({"json": {"question": "   "}}, 422, "question: String should match pattern"),
        ({"json": {"question": "\x00\x1b"}}, 422, "question is empty"),
        ({"json": {"question": "why " * 400}}, 422, "limit is 1000"),
        ({"json": {"question": 123}}, 422, "question"),
        ({"json": {}}, 422, "question: Field required"),
        ({"json": {"question": "nhs", "top_k": 0}}, 422, "top_k"),
        ({"json": {"question": "nhs", "top_k": 500}}, 422, "top_k"),
        ({"json": {"question": "nhs", "top_k": "many"}}, 422, "top_k"),
        ({"json": {"question": "nhs", "filters": {"colour": ["red"]}}}, 422, "filters.colour"),
        ({"json": {"question": "nhs", "filters": {"sections": ["footer"]}}}, 422, "sections"),
        ({"json": {"question": "nhs", "filters": {"date_from": "last spring"}}}, 422, "filters.date_from"),
        ({"json": {"question": "nhs", "filters": {"date_to": "2021-02-30"}}}, 422, "filters.date_to"),
        ({"json": {"question": "nhs", "temperature": 1}}, 422, "temperature"),
        ({"json": {"question": "nhs", "history": [{"role": "robot", "content": "hi"}]}}, 422, "role"),
        ({"json": {"question": "nhs", "history": [{"role": "user", "content": "q"}] * 21}}, 422, "limit is 20"),
        ({"json": {"question": "nhs", "history": [{"role": "assistant", "content": "a" * 2001}]}}, 422,
         "history.0.content: String should have at most 2000 characters"),
        ({"json": {"question": "nhs", "history": [{"role": "user", "content": "q" * 1001}]}}, 422,
         "history.0: an earlier question of 1001 characters; the limit is 1000"),
        ({"json": {"question": "nhs", "history": [{"role": "assistant", "content": "a" * 2000}] * 16}}, 422,
         "history: history is 32000 characters in all; the limit is 30000"),
        ({"content": b'{"question": "nhs"', "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"content": b"x" * 2_100_000, "headers": {"content-type": "application/json"}}, 413, "larger than"),
        ({"content": b"question=nhs", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 422,
         "Content-Type: application/json"),
    ],
)
def test_bad_ask_requests_get_a_4xx_that_says_what_was_wrong(
    client: TestClient, request_kwargs: dict, code: int, says: str
) -> None:
    response = client.post("/ask", **request_kwargs)
    assert response.status_code == code, response.text
    assert says in response.json()["detail"]


def test_get_ask_needs_q(client: TestClient) -> None:
    response = client.get("/ask")
    assert response.status_code == 422 and "q: Field required" in response.json()["detail"]


def test_articles_list_and_full_text(client: TestClient) -> None:
    listing = client.get("/articles").json()
    assert listing["total"] == 5 and len(listing["articles"]) == 5
    assert all(a["chunks"] > 0 for a in listing["articles"])
    assert client.get("/articles", params={"limit": 2, "offset": 4}).json()["articles"][0]["id"].startswith("004")
    article = client.get("/articles/000_b56ffdfc634a8662").json()
    assert article["author"] == "Simon Duffy" and "means-testing" in article["text"]
    assert client.get("/articles/nope").status_code == 404
    assert client.get("/articles/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert client.get("/articles", params={"limit": 0}).status_code == 422


def test_admin_routes_need_the_token_and_change_nothing_without_it(
    client: TestClient, dirs: tuple[Path, Path]
) -> None:
    articles, _ = dirs
    before = sorted(p.name for p in articles.iterdir())
    attempts = [
        ("post", "/articles", {"json": {"id": "intruder", "text": "spam"}}),
        ("delete", "/articles/000_b56ffdfc634a8662", {}),
        ("post", "/admin/reindex", {}),
        ("get", "/admin/jobs/abc", {}),
    ]
    for method, url, kwargs in attempts:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = getattr(client, method)(url, headers=headers, **kwargs)
            assert response.status_code == 401, (method, url, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    assert sorted(p.name for p in articles.iterdir()) == before


def test_admin_routes_are_off_without_a_configured_token(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    articles, index = copy_service_dirs(tmp_path, sample_index)
    with make_client(articles, index, encoder, admin_token=None) as client:
        response = client.post("/admin/reindex", headers=AUTH)
        assert response.status_code == 403 and "QA_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.slow
def test_add_ask_replace_delete_an_article_without_restart(client: TestClient, dirs: tuple[Path, Path]) -> None:
    articles, _ = dirs
    question = "Who trimmed the lamp of the Stroma lighthouse?"
    before = client.post("/ask", json={"question": question}).json()
    assert "stroma" not in {p["article_id"] for p in before["passages"]}
    version_before = client.get("/readyz").json()["index_version"]

    added = client.post("/articles", headers=AUTH, json={
        "id": "stroma", "title": "The Stroma lighthouse", "author": "Island Archive", "text": LIGHTHOUSE_TEXT,
    })
    assert added.status_code == 202, added.text
    job = wait_for_job(client, added.json()["job_id"])
    assert job["status"] == "succeeded" and job["result"]["added"] == 1, job
    # Only the new article's chunks were embedded; the other five came from the previous version.
    assert 0 < job["result"]["chunks_embedded"] <= 3

    body = client.post("/ask", json={"question": question}).json()
    assert body["index_version"] != version_before
    assert body["passages"][0]["article_id"] == "stroma"
    assert "Agnes Rendall" in {p["speaker"] for p in body["passages"] if p["article_id"] == "stroma"}
    assert (articles / "stroma.txt").read_text() == LIGHTHOUSE_TEXT

    replaced = client.post("/articles", headers=AUTH, json={"id": "stroma", "text": LIGHTHOUSE_TEXT + "\n\nA new ending."})
    assert wait_for_job(client, replaced.json()["job_id"])["result"]["changed"] == 1
    assert not (articles / "stroma.meta.json").exists()  # the replacement has no metadata

    deleted = client.delete("/articles/stroma", headers=AUTH)
    assert deleted.status_code == 202
    assert wait_for_job(client, deleted.json()["job_id"])["result"]["removed"] == 1
    assert client.get("/articles/stroma").status_code == 404
    assert client.delete("/articles/stroma", headers=AUTH).status_code == 404
    assert not list(articles.glob("stroma*"))


@pytest.mark.slow
def test_an_article_job_reads_only_that_articles_files(client: TestClient, dirs: tuple[Path, Path]) -> None:
    articles, _ = dirs
    (articles / "notes.txt").write_bytes(b"notes\x00binary")  # what a folder run reports as skipped
    try:
        added = client.post("/articles", headers=AUTH, json={"id": "stroma", "text": LIGHTHOUSE_TEXT})
        result = wait_for_job(client, added.json()["job_id"])["result"]
        assert (result["added"], result["unchanged"], result["skipped"]) == (1, 0, [])
        reindex = wait_for_job(client, client.post("/admin/reindex", headers=AUTH).json()["job_id"])["result"]
        assert (reindex["unchanged"], reindex["published"]) == (6, False)
        assert [s["source"] for s in reindex["skipped"]] == [str(articles / "notes.txt")]
    finally:
        (articles / "notes.txt").unlink()
        wait_for_job(client, client.delete("/articles/stroma", headers=AUTH).json()["job_id"])


@pytest.mark.slow
def test_upload_an_article_file(client: TestClient) -> None:
    markdown = f"---\ntitle: Stroma notes\nauthor: Island Archive\n---\n{LIGHTHOUSE_TEXT}\n".encode()
    response = client.post("/articles", headers=AUTH, files={"file": ("stroma-notes.md", markdown, "text/markdown")})
    assert response.status_code == 202, response.text
    assert response.json()["article_id"] == "stroma-notes"
    assert wait_for_job(client, response.json()["job_id"])["status"] == "succeeded"
    assert client.get("/articles/stroma-notes").json()["title"] == "Stroma notes"
    removed = client.delete("/articles/stroma-notes", headers=AUTH)
    assert wait_for_job(client, removed.json()["job_id"])["result"]["removed"] == 1


@pytest.mark.parametrize(
    ("files", "data", "says"),
    [
        ({"file": ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png")}, None, "unsupported file type"),
        ({"file": ("blob.txt", b"abc\x00def", "text/plain")}, None, "binary"),
        ({"file": ("latin.txt", "caf\xe9".encode("latin-1"), "text/plain")}, None, "UTF-8"),
        ({"file": ("empty.txt", b"   ", "text/plain")}, None, "no text"),
        ({"file": ("x.txt", b"some text", "text/plain")}, {"id": "../escape"}, "not valid"),
        ({"file": (".hidden.txt", b"some text", "text/plain")}, None, "not valid"),
        (None, {"id": "abc"}, "'file' field"),
        ({"file": ("linked.md", b"---\nurl: javascript:alert(1)\n---\nsome text", "text/markdown")}, None,
         "url must be an absolute http or https URL"),
    ],
)
def test_bad_uploads_are_refused_and_write_nothing(
    client: TestClient, dirs: tuple[Path, Path], files: dict | None, data: dict | None, says: str
) -> None:
    articles, _ = dirs
    before = sorted(p.name for p in articles.iterdir())
    if files is None:  # a form without a file
        response = client.post("/articles", headers=AUTH, data=data, files={"other": ("a.txt", b"x")})
    else:
        response = client.post("/articles", headers=AUTH, files=files, data=data)
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert sorted(p.name for p in articles.iterdir()) == before


def test_bad_json_articles_are_refused(client: TestClient) -> None:
    for body, says in [
        ({"id": "../../etc/passwd", "text": "x"}, "id"),
        ({"id": "ok", "text": ""}, "text"),
        ({"id": "ok"}, "text: Field required"),
        ({"id": "ok", "text": "x", "colour": "red"}, "colour"),
        ({"id": "ok", "text": "x", "url": "javascript:alert(1)"}, "url must be an absolute http or https URL"),
        ({"id": "ok", "text": "x", "url": "/news/relative"}, "url must be an absolute http or https URL"),
    ]:
        response = client.post("/articles", headers=AUTH, json=body)
        assert response.status_code == 422 and says in response.json()["detail"], response.text
    response = client.post("/articles", headers={**AUTH, "content-type": "text/plain"}, content=b"hello")
    assert response.status_code == 415


def test_reindex_with_nothing_changed_publishes_nothing(client: TestClient) -> None:
    version = client.get("/readyz").json()["index_version"]
    response = client.post("/admin/reindex", headers=AUTH)
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["job_id"])
    assert job["status"] == "succeeded" and job["result"]["published"] is False
    assert job["result"]["chunks_embedded"] == 0
    assert client.get("/readyz").json()["index_version"] == version
    assert client.get("/admin/jobs/doesnotexist", headers=AUTH).status_code == 404


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["chunks"] > 0 and ready["index_version"]
    client.post("/ask", json={"question": MEANS_TESTING})
    text = client.get("/metrics").text
    assert 'qa_http_requests_total{method="POST",route="/ask",status="200"}' in text
    assert 'qa_http_request_seconds_bucket{le="0.05",method="POST",route="/ask"}' in text
    assert f'qa_index_info{{version="{ready["index_version"]}"}} 1.0' in text
    assert f"qa_index_chunks {float(ready['chunks'])}" in text
    assert "qa_ingest_jobs_pending" in text
    assert 'qa_answers_total{confidence="high"}' in text


def test_a_new_calibration_is_used_without_a_restart_and_a_broken_one_is_refused(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    articles, index = copy_service_dirs(tmp_path, sample_index)
    with make_client(articles, index, encoder) as client:  # the default bar, 0.95
        # The calibration this configuration has: the shipped one for the default model, the
        # index's own (qa-calibrate's) for another.
        ready = client.get("/readyz").json()["calibration"]
        assert ready == choose_calibration(index, encoder.spec).reason
        assert ("shipped" in ready) == encoder.spec.is_default
        def asked() -> dict:
            return client.post("/ask", json={"question": MEANS_TESTING}).json()

        before = asked()
        # qa-calibrate's output for this index: here one that is sure of everything.
        sure = Calibration(encoder.spec.model, ("margin",), (0.0,), 10.0, {}, embedding=encoder.spec)
        save_calibration(index, sure)
        deadline = time.monotonic() + 10
        while (after := asked())["probability"] == before["probability"]:  # the cached result, until
            assert time.monotonic() < deadline, "the new calibration was not picked up"
            time.sleep(0.1)
        assert "qa-calibrate" in client.get("/readyz").json()["calibration"]
        assert after["probability"] > 0.99 > before["probability"] and after["confidence"] == "high"

        (index / CALIBRATION_FILE).write_text("{not json")
        deadline = time.monotonic() + 10
        while not (client.get("/readyz").json()["detail"] or "").startswith("calibration not loaded"):
            assert time.monotonic() < deadline, "the broken calibration was not reported"
            time.sleep(0.1)
        still = client.post("/ask", json={"question": MEANS_TESTING})
        assert still.status_code == 200 and still.json()["probability"] == after["probability"]


def test_ask_says_how_sure_it_is_and_answers_only_past_the_default_bar(
    dirs: tuple[Path, Path], encoder: Encoder
) -> None:
    with make_client(*dirs, encoder) as strict:  # QA_TARGET_PRECISION at its default, 0.95
        choice = choose_calibration(dirs[1], encoder.spec)
        assert strict.get("/readyz").json()["calibration"] == choice.reason
        # The probability the calibration needs for the default target (its held-out curve).
        bar = choice.calibration.threshold(0.95)
        levels = []
        for question in (MEANS_TESTING, "How much have A&E visits gone up?", "Does he trust councils?"):
            body = strict.post("/ask", json={"question": question}).json()
            assert 0 < body["probability"] < 1
            assert (body["confidence"] == "high") == (body["answer"] is not None)
            assert body["confidence"] != "high" or body["probability"] >= bar  # never high short of the bar
            levels.append((body["confidence"], body["probability"] >= bar))
        # Both sides of the bar were seen: answered past it, not answered short of it.
        assert ("high", True) in levels and ("low", False) in levels
        nothing = strict.post("/ask", json={"question": "What is the boiling point of tungsten?"}).json()
        assert nothing["confidence"] == "none" and nothing["probability"] is None


def test_cors_allows_only_configured_origins(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = client.options("/ask", headers={"Origin": "https://news.example.org", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://news.example.org"
    refused = client.options("/ask", headers={"Origin": "https://evil.example.com", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    simple = client.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in simple.headers


def test_service_picks_up_a_version_published_beside_it_and_refuses_a_corrupt_one(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    from index.settings import Settings
    from ingest.pipeline import run_ingest

    articles, index = copy_service_dirs(tmp_path, sample_index)
    with make_client(articles, index, encoder) as client:
        first = client.get("/readyz").json()["index_version"]
        (articles / "stroma.txt").write_text(LIGHTHOUSE_TEXT)
        report = run_ingest(articles, Settings(index_dir=index, articles_dir=articles), encoder=encoder, progress=False)
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["index_version"] != report.version:
            assert time.monotonic() < deadline, "the service did not switch to the new version"
            time.sleep(0.1)
        assert client.get("/articles/stroma").status_code == 200

        # A published version naming a segment whose file does not match its checksum is
        # never served.
        manifest = json.loads((index / VERSIONS / report.version / "manifest.json").read_text())
        corrupt = index / "segments" / "s999999"
        shutil.copytree(index / "segments" / manifest["segments"][-1]["name"], corrupt)
        with (corrupt / "articles.jsonl").open("ab") as handle:
            handle.write(b"\n")
        manifest["segments"][-1]["name"] = corrupt.name
        bad = index / VERSIONS / "v999999-20990101T000000Z"
        shutil.copytree(index / VERSIONS / report.version, bad)
        (bad / "manifest.json").write_text(json.dumps(manifest))
        (index / "CURRENT").write_text(bad.name)
        deadline = time.monotonic() + 10
        while "articles.jsonl" not in (client.get("/readyz").json()["detail"] or ""):
            assert time.monotonic() < deadline, "the corrupt version was not reported"
            time.sleep(0.1)
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["index_version"] == report.version
        assert client.post("/ask", json={"question": MEANS_TESTING}).json()["index_version"] == report.version
        assert "qa_index_load_failures_total 1.0" in client.get("/metrics").text
        assert first != report.version


def test_service_without_an_index_is_not_ready_and_says_how_to_build_one(
    tmp_path: Path, encoder: Encoder
) -> None:
    with make_client(tmp_path / "articles", tmp_path / "index", encoder) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "qa-ingest" in ready.json()["detail"]
        asked = client.post("/ask", json={"question": MEANS_TESTING})
        assert asked.status_code == 503 and "qa-ingest" in asked.json()["detail"]


def test_ask_is_rate_limited_per_client_with_retry_after(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    articles, index = copy_service_dirs(tmp_path, sample_index)
    with make_client(articles, index, encoder, ask_rate_per_minute=6, ask_burst=3) as client:
        codes = [client.get("/ask", params={"q": "nhs funding"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.post("/ask", json={"question": "nhs funding"})
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 10
        assert "too many questions" in limited.json()["detail"]
        assert client.get("/articles").status_code == 200  # only /ask is limited


def _cache_counts(client: TestClient) -> dict[str, int]:
    counts = {"hit": 0, "miss": 0}
    for line in client.get("/metrics").text.splitlines():
        for result in counts:
            if line.startswith(f'qa_search_cache_total{{result="{result}"}}'):
                counts[result] = int(float(line.split()[-1]))
    return counts


@pytest.mark.slow
def test_a_repeated_question_comes_from_the_cache_until_the_version_changes(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    from index.settings import Settings
    from ingest.pipeline import run_update

    articles, index = copy_service_dirs(tmp_path, sample_index)
    asked = {"question": "Who compares healthcare to having a kitchen replaced?"}
    with make_client(articles, index, encoder) as client:
        first, again = (client.post("/ask", json=asked).json() for _ in range(2))
        assert _cache_counts(client) == {"hit": 1, "miss": 1}
        # The same answer; each asking is logged apart, so each has its own answer_id.
        assert first["answer_id"] != again["answer_id"]
        assert {**first, "took_ms": 0, "answer_id": ""} == {**again, "took_ms": 0, "answer_id": ""}
        # Another top_k, or the same words as a follow-up, is another search.
        client.post("/ask", json={**asked, "top_k": 2})
        client.post("/ask", json={"question": "Does he trust councils?", "history": [{"role": "user", "content": asked["question"]}]})
        assert _cache_counts(client) == {"hit": 1, "miss": 3}

        (articles / "stroma.txt").write_text(LIGHTHOUSE_TEXT, encoding="utf-8")
        report = run_update([articles / "stroma.txt"], Settings(index_dir=index), encoder, progress=False)
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["index_version"] != report.version:
            assert time.monotonic() < deadline, "the new version was not served"
            time.sleep(0.1)
        after = client.post("/ask", json=asked).json()
        assert after["index_version"] == report.version != first["index_version"]
        assert _cache_counts(client) == {"hit": 1, "miss": 4}
    with make_client(articles, index, encoder, search_cache_size=0) as client:
        for _ in range(2):
            client.post("/ask", json=asked)
        assert _cache_counts(client) == {"hit": 0, "miss": 2}
