"""Embedding providers behind one interface: the local model with question and passage
prefixes, and an OpenAI-compatible embeddings endpoint, both recorded in the index and refused
by a configuration of another spec. The endpoint is a real llama.cpp server (the `xllamacpp`
wheel, SmolLM2 mean-pooled) for the happy path, and a scripted stand-in for the faults a real
server will not produce on demand."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index.confidence import CalibrationChoice
from index.encoder import Encoder, make_encoder
from index.endpoint_encoder import EmbeddingEndpointError, EndpointEncoder
from index.errors import IndexMismatchError, IngestError
from index.models import EmbeddingSpec
from index.search import Searcher
from index.settings import Settings
from index.store import current_manifest, load_index
from index.manifest import VERSIONS, check_embedding, current_version_name
from ingest import cli as ingest_cli
from ingest.pipeline import run_ingest, run_update
from qa_service.app import create_app
from qa_service.settings import ServiceSettings
from tests.conftest import free_port

ARTICLES = {
    "clinic.txt": "Riverside clinic opens at night\n\nThe Riverside clinic opened a walk-in "
    "service for night-shift workers this spring. Nurse manager Priya Raman said the clinic now "
    "sees forty patients a night, most of them from the nearby distribution centre.",
    "ferry.txt": "Island ferry timetable cut\n\nThe ferry to Holm Island will sail twice a day "
    "instead of four times from October, the harbour board said. Shopkeepers on the island fear "
    "that day visitors will stop coming.",
    "library.txt": "Library lends tools\n\nThe town library now lends drills, ladders and sewing "
    "machines as well as books. Librarian Tomas Berg said the tool shelf was emptied in its "
    "first week.",
}
EXTRA = ("bakery.txt", "Bakery wins prize\n\nA small bakery on Mill Street won the regional "
         "bread prize for its rye loaf, baked overnight in a wood-fired oven.")
PASSAGE = EmbeddingSpec("sentence-transformers", Settings().model, document_prefix="passage: ")


def write_articles(folder: Path, articles: dict[str, str] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def uncalibrated() -> CalibrationChoice:
    return CalibrationChoice(None, "no calibration in this test")


# -- the local model's prefixes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(encoder: Encoder) -> Encoder:
    """The session's encoder with torch and the question path loaded, so that `with_spec`
    copies share them."""
    encoder.load_model()
    assert encoder.prepare_question_path()
    return encoder


def test_empty_prefixes_give_the_vectors_of_before_bit_for_bit(loaded: Encoder) -> None:
    plain = loaded.with_spec(EmbeddingSpec("sentence-transformers", loaded.model_name, "", ""))
    texts = ["Who runs the night clinic?", "The ferry sails twice a day.", "Ünïcode & numbers: 22%"]
    before = loaded._model.encode(texts, batch_size=loaded.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
    assert np.array_equal(plain.encode(texts), before)
    onnx = loaded._onnx_query_model()
    assert np.array_equal(plain.encode_query(texts[0]), onnx.encode(texts[0]))
    assert np.array_equal(plain.encode_questions(texts), onnx.encode_many(texts))


def test_prefixes_go_before_passages_and_questions_on_both_paths(loaded: Encoder) -> None:
    prefixed = loaded.with_spec(EmbeddingSpec("sentence-transformers", loaded.model_name, "query: ", "passage: "))
    texts = ["Who runs the night clinic?", "The ferry sails twice a day."]

    def torch(strings: list[str]) -> np.ndarray:
        return loaded._model.encode(strings, normalize_embeddings=True, convert_to_numpy=True)

    assert np.array_equal(prefixed.encode(texts), torch(["passage: " + t for t in texts]))
    # The question path (ONNX Runtime) gives torch's vector for the prefixed text: a prefix is text.
    question = prefixed.encode_query(texts[0])
    assert prefixed.query_backend == "onnx"
    np.testing.assert_allclose(question, torch(["query: " + texts[0]])[0], atol=1e-4)
    np.testing.assert_allclose(prefixed.encode_questions(texts), torch(["query: " + t for t in texts]), atol=1e-4)
    assert not np.allclose(question, loaded.encode_query(texts[0]), atol=1e-3)  # the prefix changed it


def test_a_passage_prefix_is_recorded_cached_apart_and_refused_elsewhere(tmp_path: Path, loaded: Encoder) -> None:
    articles = write_articles(tmp_path / "articles")
    index_dir = tmp_path / "index"
    plain_settings = Settings(index_dir=index_dir)
    prefixed_settings = Settings(index_dir=index_dir, document_prefix="passage: ")
    assert EmbeddingSpec.from_settings(prefixed_settings) == PASSAGE
    prefixed = loaded.with_spec(PASSAGE)

    first = run_ingest(articles, plain_settings, encoder=loaded, progress=False)
    plain = EmbeddingSpec.from_settings(plain_settings)
    assert plain == EmbeddingSpec("sentence-transformers", loaded.model_name)  # the default model has no prompts
    # An index written before specs were recorded reads as the local model without prefixes.
    version_dir = index_dir / VERSIONS / current_version_name(index_dir)
    for path in [version_dir / "manifest.json", *index_dir.glob("segments/*/segment.json")]:
        data = json.loads(path.read_text())
        assert data.pop("embedding") == plain.record()
        path.write_text(json.dumps(data))
    assert load_index(index_dir, embedding=plain).manifest.embedding_spec == plain
    # Another prefix: every article again, none of the prefix-less vectors reused.
    second = run_ingest(articles, prefixed_settings, encoder=prefixed, progress=False)
    assert second.rebuild_reason and "embedding changed" in second.rebuild_reason
    assert second.chunks_embedded == first.chunks_embedded == second.chunks > 0
    manifest = current_manifest(index_dir)
    assert manifest.embedding["document_prefix"] == "passage: " and manifest.embedding_spec == PASSAGE
    segment = json.loads((index_dir / "segments" / manifest.segments[0]["name"] / "segment.json").read_text())
    assert segment["embedding"] == PASSAGE.record()
    index = load_index(index_dir, embedding=PASSAGE)
    np.testing.assert_allclose(index.vectors[0], prefixed.encode([index.chunks[0].text])[0], atol=1e-6)
    with sqlite3.connect(index_dir / "cache" / "vectors.sqlite") as db:
        keys = dict(db.execute("SELECT model, COUNT(*) FROM vectors GROUP BY model").fetchall())
    # The prefix-less rows keep the bare model name (as before specs), the prefixed the whole spec.
    assert keys == {loaded.model_name: first.chunks, PASSAGE.key: second.chunks}

    # Configured without the prefix: refused, naming both and the setting to change.
    with pytest.raises(IndexMismatchError, match="passage prefix 'passage: '.*QA_DOCUMENT_PREFIX"):
        load_index(index_dir, embedding=plain)
    with pytest.raises(IndexMismatchError, match="QA_DOCUMENT_PREFIX"):
        check_embedding(manifest, plain)
    with pytest.raises(IndexMismatchError, match="QA_DOCUMENT_PREFIX"):  # a server's searcher too
        Searcher(index, loaded, plain_settings)
    assert Searcher(index, prefixed, prefixed_settings).search(index.chunks[0].text).passages
    (articles / EXTRA[0]).write_text(EXTRA[1], encoding="utf-8")
    with pytest.raises(IngestError, match="embedding changed"):
        run_update([articles / EXTRA[0]], plain_settings, encoder=loaded, progress=False)
    # An encoder of another spec than the settings' is refused before anything is embedded.
    with pytest.raises(IngestError, match="the encoder embeds with"):
        run_ingest(articles, prefixed_settings, encoder=loaded, progress=False)
    # Back without the prefix: rebuilt, and the prefix-less vectors come from the cache.
    (articles / EXTRA[0]).unlink()
    third = run_ingest(articles, plain_settings, encoder=loaded, progress=False)
    assert third.published and third.chunks_embedded == 0


# -- a real llama.cpp server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_embeddings() -> Iterator[str]:
    """llama.cpp's server embedding with SmolLM2 (mean pooling) on 127.0.0.1: its /v1 URL."""
    pytest.importorskip("xllamacpp")
    from qa_service.local_llm import LocalModelServer, bundled_model_path

    # One thread: two spin against each other on 2 cores.
    server = LocalModelServer(bundled_model_path(), port=free_port(), threads=1, context=2048, embeddings=True)
    yield server.url
    server.close()


@pytest.mark.slow
def test_ingest_and_search_through_a_llama_cpp_endpoint(tmp_path: Path, llama_embeddings: str) -> None:
    articles = write_articles(tmp_path / "articles")
    settings = Settings(index_dir=tmp_path / "index", embed_url=llama_embeddings, embed_model="smollm2")
    encoder = make_encoder(settings)
    assert isinstance(encoder, EndpointEncoder) and encoder.spec == EmbeddingSpec("openai", "smollm2")
    report = run_ingest(articles, settings, progress=False)
    assert report.published and report.chunks_embedded == report.chunks >= 3

    manifest = current_manifest(settings.index_dir)
    assert manifest.embedding == {"provider": "openai", "model": "smollm2", "query_prefix": "",
                                  "document_prefix": ""}
    assert manifest.model == "smollm2" and manifest.dim == encoder.dim == 576
    index = load_index(settings.index_dir, embedding=encoder.spec)
    check_embedding(index.manifest, encoder.spec, encoder.dim)
    searcher = Searcher(index, encoder, settings, uncalibrated())
    found = searcher.search("Which clinic opened a walk-in service for night-shift workers?")
    assert found.passages[0].article.id == "clinic"
    # Dense alone: a passage's own text finds that passage first (the endpoint's vectors rank).
    chunk = next(c for c in index.chunks if "Holm Island" in c.text)
    dense = searcher.search(chunk.text, mode="dense")
    assert dense.passages[0].chunk.id == chunk.id and dense.passages[0].dense_score > 0.99

    # The unchanged folder embeds nothing; a local-model configuration is refused, clearly.
    assert run_ingest(articles, settings, progress=False).chunks_embedded == 0
    local = EmbeddingSpec.from_settings(Settings(index_dir=settings.index_dir))
    assert local.provider == "sentence-transformers"  # the configured local model (QA_MODEL)
    refused = rf"built with smollm2 \(openai\) but .*{re.escape(local.describe())} is configured.*QA_EMBED_URL"
    with pytest.raises(IndexMismatchError, match=refused):
        load_index(settings.index_dir, embedding=local)
    (articles / EXTRA[0]).write_text(EXTRA[1], encoding="utf-8")
    with pytest.raises(IngestError, match="embedding changed"):
        run_update([articles / EXTRA[0]], Settings(index_dir=settings.index_dir), progress=False)
    # The endpoint adds to its own index.
    added = run_update([articles / EXTRA[0]], settings, progress=False)
    assert len(added.added) == 1 and added.chunks_embedded >= 1
    assert load_index(settings.index_dir, embedding=encoder.spec).manifest.counts["articles"] == len(ARTICLES) + 1


# -- faults, against a scripted stand-in ------------------------------------------------------

Answer = tuple[int, dict[str, str], bytes]
Action = Callable[[list[str]], Answer]


class StandIn:
    """A stand-in for an embeddings endpoint, for the fault cases: each request is answered by
    the next action of `script`, then by `default`. "Vectors" are `dim` numbers from a hash of
    each text (the same text, the same vector)."""

    def __init__(self) -> None:
        self.script: list[Action] = []
        self.default: Action = self.ok
        self.dim = 8
        self.requests: list[tuple[float, dict, dict[str, str]]] = []  # (time, body, headers)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append((time.monotonic(), body, dict(self.headers)))
                if self.path != "/v1/embeddings":
                    status, headers, payload = 404, {}, b'{"error": {"message": "no such route"}}'
                else:
                    action = stand_in.script.pop(0) if stand_in.script else stand_in.default
                    status, headers, payload = action(body["input"])
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client that gave up (the timeout test) is not an error here

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def vector(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        return np.random.default_rng(seed).normal(size=self.dim).tolist()

    def data(self, texts: list[str]) -> list[dict]:
        return [{"object": "embedding", "index": i, "embedding": self.vector(t)} for i, t in enumerate(texts)]

    def ok(self, texts: list[str]) -> Answer:
        return self.answer({"object": "list", "data": self.data(texts)})

    @staticmethod
    def answer(payload: object, status: int = 200, **headers: str) -> Answer:
        return status, headers, json.dumps(payload).encode()

    def reset(self) -> None:
        self.script, self.default, self.dim, self.requests = [], self.ok, 8, []

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def stand_in_server() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


@pytest.fixture
def stand_in(stand_in_server: StandIn) -> StandIn:
    stand_in_server.reset()
    return stand_in_server


def endpoint(url: str, **options) -> EndpointEncoder:
    return EndpointEncoder(url, EmbeddingSpec("openai", "stand-in"), **{"backoff_s": 0.01, **options})


def test_vectors_come_back_in_order_normalised_with_the_key_and_prefixes(stand_in: StandIn) -> None:
    def reversed_order(texts: list[str]) -> Answer:
        return stand_in.answer({"data": stand_in.data(texts)[::-1]})

    stand_in.default = reversed_order
    spec = EmbeddingSpec("openai", "stand-in", query_prefix="query: ", document_prefix="passage: ")
    encoder = EndpointEncoder(stand_in.url, spec, api_key="s3cret", batch_size=2)
    texts = ["one", "two", "three"]
    vectors = encoder.encode(texts)
    expected = np.array([stand_in.vector("passage: " + t) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6)
    assert vectors.dtype == np.float32 and encoder.dim == 8
    np.testing.assert_allclose(np.linalg.norm(encoder.encode_query("why?")), 1.0, rtol=1e-6)
    bodies = [body for _, body, _ in stand_in.requests]
    assert [b["input"] for b in bodies[:2]] == [["passage: one", "passage: two"], ["passage: three"]]
    assert bodies[-1] == {"model": "stand-in", "input": ["query: why?"]}
    assert all(headers["Authorization"] == "Bearer s3cret" for _, _, headers in stand_in.requests)


def test_a_busy_answer_is_tried_again_after_its_retry_after(stand_in: StandIn) -> None:
    stand_in.script = [lambda texts: stand_in.answer({"error": "busy"}, 429, **{"Retry-After": "1"})]
    vectors = endpoint(stand_in.url, retries=1).encode(["a", "b"])
    assert vectors.shape == (2, 8)
    (first, _, _), (second, _, _) = stand_in.requests
    assert second - first >= 0.95  # Retry-After, not the 0.01 s backoff
    # A long Retry-After is capped.
    stand_in.reset()
    stand_in.script = [lambda texts: stand_in.answer({}, 503, **{"Retry-After": "3600"})]
    started = time.monotonic()
    assert endpoint(stand_in.url, retries=1, max_wait_s=0.2).encode(["a"]).shape == (1, 8)
    assert time.monotonic() - started < 5


def test_server_errors_until_the_retries_run_out_are_one_clear_error(stand_in: StandIn) -> None:
    stand_in.default = lambda texts: stand_in.answer({"error": {"message": "model is loading"}}, 500)
    with pytest.raises(EmbeddingEndpointError) as caught:
        endpoint(stand_in.url, retries=2).encode(["a"])
    message = str(caught.value)
    assert f"{stand_in.url}/embeddings failed after 3 tries: HTTP 500 (model is loading)" in message
    assert "QA_EMBED_URL" in message and len(stand_in.requests) == 3
    # A refusal (401) is not tried again, and says what to check.
    stand_in.reset()
    stand_in.default = lambda texts: stand_in.answer({"error": {"message": "bad key"}}, 401)
    with pytest.raises(EmbeddingEndpointError, match=r"HTTP 401 \(bad key\); check QA_EMBED_API_KEY"):
        endpoint(stand_in.url, retries=2).encode(["a"])
    assert len(stand_in.requests) == 1
    # Nothing listening: tried again, then the same kind of message.
    with pytest.raises(EmbeddingEndpointError, match="failed after 2 tries: could not connect"):
        endpoint(f"http://127.0.0.1:{free_port()}/v1", retries=1).encode(["a"])


def test_a_timeout_is_tried_again_then_a_clear_error(stand_in: StandIn) -> None:
    def slow(texts: list[str]) -> Answer:
        time.sleep(1.0)
        return stand_in.ok(texts)

    stand_in.script = [slow]
    assert endpoint(stand_in.url, timeout_s=0.3, retries=1).encode(["a"]).shape == (1, 8)
    stand_in.default = slow
    with pytest.raises(EmbeddingEndpointError, match=r"failed after 1 try: no answer within 0.3 s"):
        endpoint(stand_in.url, timeout_s=0.3, retries=0).encode(["a"])


def _shape(payload: Callable[[StandIn, list[str]], object], body: bytes | None = None) -> Callable:
    return lambda s: (lambda texts: (200, {}, body) if body is not None else s.answer(payload(s, texts)))


def _item(s: StandIn, i: int, embedding: object) -> dict:
    return {"index": i, "embedding": embedding}


@pytest.mark.parametrize(("make", "message"), [
    (_shape(lambda s, t: {"object": "list"}), "no 'data' list"),
    (_shape(lambda s, t: {"data": s.data(t)[:-1]}), "1 vectors for 2 texts"),
    (_shape(lambda s, t: {"data": [_item(s, 0, [0.1] * 8), _item(s, 1, [0.1] * 7)]}), r"lengths \[7, 8\]"),
    (_shape(lambda s, t: {"data": [_item(s, 0, ["0.1"] * 8), _item(s, 1, [0.1] * 8)]}), "not a list of numbers"),
    (_shape(lambda s, t: {"data": [_item(s, 0, [[0.1] * 8]), _item(s, 1, [[0.1] * 8])]}), "not a list of numbers"),
    (_shape(lambda s, t: {"data": [_item(s, 0, [0.1] * 8), _item(s, 0, [0.2] * 8)]}), "0 to 1 once each"),
    (_shape(lambda s, t: {"data": [_item(s, 0, [0.0] * 8), _item(s, 1, [0.2] * 8)]}), "zero or not finite"),
    (_shape(None, b"<html>gateway</html>"), "not JSON"),
], ids=["no data", "fewer vectors", "ragged", "strings", "per token", "same index", "zero", "not json"])
def test_an_answer_of_the_wrong_shape_is_a_clear_error(stand_in: StandIn, make, message: str) -> None:
    stand_in.default = make(stand_in)
    with pytest.raises(EmbeddingEndpointError, match=message) as caught:
        endpoint(stand_in.url, retries=2).encode(["a", "b"])
    assert "one vector per text" in str(caught.value)
    assert len(stand_in.requests) == 1  # a wrong answer is not asked again


def test_qa_ingest_fails_in_one_line_and_keeps_the_index(stand_in: StandIn, tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    articles = write_articles(tmp_path / "articles")
    index_dir = tmp_path / "index"
    monkeypatch.setenv("QA_EMBED_URL", stand_in.url)
    monkeypatch.setenv("QA_EMBED_MODEL", "stand-in")
    monkeypatch.setenv("QA_EMBED_RETRIES", "1")
    assert ingest_cli.main([str(articles), "--index", str(index_dir), "--quiet"]) == 0
    served = current_version_name(index_dir)
    assert current_manifest(index_dir).embedding_spec == EmbeddingSpec("openai", "stand-in")
    capsys.readouterr()

    stand_in.default = lambda texts: stand_in.answer({"error": {"message": "overloaded"}}, 500)
    (articles / EXTRA[0]).write_text(EXTRA[1], encoding="utf-8")
    assert ingest_cli.main([str(articles), "--index", str(index_dir), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"qa-ingest: error: embeddings endpoint {stand_in.url}/embeddings failed after 2 tries: HTTP 500 "
        "(overloaded); check that it is running and serves model 'stand-in' (QA_EMBED_URL, QA_EMBED_MODEL)"
    )
    assert current_version_name(index_dir) == served
    assert len(load_index(index_dir).articles) == len(ARTICLES)


def test_an_endpoint_whose_vectors_changed_length_is_refused(stand_in: StandIn, tmp_path: Path) -> None:
    articles = write_articles(tmp_path / "articles")
    settings = Settings(index_dir=tmp_path / "index", embed_url=stand_in.url, embed_model="stand-in")
    run_ingest(articles, settings, progress=False)
    served = current_version_name(settings.index_dir)
    stand_in.dim = 6  # another model deployed under the same name
    (articles / EXTRA[0]).write_text(EXTRA[1], encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="holds 8-dimensional vectors .* gives 6-dimensional ones"):
        run_ingest(articles, settings, progress=False)
    assert current_version_name(settings.index_dir) == served
    encoder = make_encoder(settings)
    with pytest.raises(IndexMismatchError, match="6-dimensional"):
        check_embedding(current_manifest(settings.index_dir), encoder.spec, encoder.dim)
    # A server's searcher checks the length at each question (the endpoint may be down at load).
    searcher = Searcher(load_index(settings.index_dir, embedding=encoder.spec), encoder, settings, uncalibrated())
    with pytest.raises(IndexMismatchError, match="6-dimensional"):
        searcher.search("Which clinic opened a walk-in service?")


def test_a_service_started_before_its_endpoint_answers_once_it_is_up(stand_in: StandIn, tmp_path: Path) -> None:
    """The index loads without the endpoint (ready); meanwhile each question is a 503 that
    does not show the endpoint's address; once the endpoint answers, so does the service."""
    articles = write_articles(tmp_path / "articles")
    settings = ServiceSettings(index_dir=tmp_path / "index", articles_dir=articles, embed_url=stand_in.url,
                               embed_model="stand-in", embed_retries=0, ask_rate_per_minute=0)
    run_ingest(articles, settings, progress=False)
    stand_in.default = lambda texts: StandIn.answer({"error": {"message": "loading model"}}, 503)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["ready"] is True
        refused = client.get("/ask", params={"q": "Which clinic opened a walk-in service?"})
        assert refused.status_code == 503 and "embeddings endpoint failed" in refused.json()["detail"]
        assert stand_in.url not in refused.text
        stand_in.default = stand_in.ok
        answered = client.get("/ask", params={"q": "Which clinic opened a walk-in service?"})
        assert answered.status_code == 200 and answered.json()["passages"]
