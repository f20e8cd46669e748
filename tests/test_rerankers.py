"""The rerank stage with its real providers: a rerank endpoint in each wire format (Cohere v2,
Hugging Face TEI), asked over HTTP on 127.0.0.1, well and in every way it can fail, through
`Searcher.search` and through the app; and a real sentence-transformers CrossEncoder. No
reranker model can be installed here, so the endpoint's scores are the project's own encoder's
cosines, and the cross-encoder is the packaged MiniLM with an untrained head: these tests check
the mechanics (what is sent, which order comes out, what a failure leaves), never quality."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index import rerankers
from index.encoder import Encoder, resolve_model_path
from index.errors import RerankError
from index.models import RerankSpec
from index.rerank import passage_text
from index.rerankers import CrossEncoderReranker, EndpointReranker, make_reranker, read_scores
from index.search import Searcher
from index.settings import DEFAULT_MODEL, Settings
from index.store import load_index
from index.version import IndexVersion
from qa_service.app import create_app
from qa_service.settings import ServiceSettings
from tests.conftest import REPO, SAMPLE_ARTICLES, free_port

QUESTION = "who argues against means-testing?"
KITCHEN = "Who compares healthcare to having a kitchen replaced?"
TOP_N = 6  # passages reranked
TOP_K = 10  # passages shown: the last four keep the fused order
TIMEOUT_S = 0.5  # a reranker meant to time out (the server sleeps longer)
PATIENT_S = 30.0  # a reranker meant to answer, however busy the test machine
KEY = "rerank-key-123"

# What each format's server accepts in a request, as the servers document it; anything else is
# refused with 422, as a strict server would.
COHERE_FIELDS = {"model", "query", "documents", "top_n", "max_tokens_per_doc", "return_documents"}
TEI_FIELDS = {"query", "texts", "raw_scores", "return_text", "truncate", "truncation_direction"}


class RerankServer:
    """A rerank endpoint for the tests: http.server's ThreadingHTTPServer on 127.0.0.1, on a
    thread of its own, speaking one wire format exactly: cohere at POST /v1/rerank (its base
    URL ends in /v1, as Jina's and vLLM's do), tei at POST /rerank. A request with a field the
    format lacks, or without one it needs, is refused with 422. Its relevance scores are the
    encoder's cosines of the question and each text it receives (each text's vector kept, so
    that a test's timeout measures the fault, not the encoder).

    `fault` makes it fail: "sleep" (answers after `sleep_s`), "500", "shape" (an answer in the
    other format's shape), "fewer" (drops the least relevant result), "not_json". Every request
    is kept in `requests` (headers, body, the scores it computed)."""

    def __init__(self, encoder: Encoder, format: str) -> None:
        self.encoder, self.format = encoder, format
        self.fault: str | None = None
        self.sleep_s = TIMEOUT_S + 1.5
        self.requests: list[dict] = []
        self._vectors: dict[str, np.ndarray] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        base = f"http://127.0.0.1:{self._server.server_address[1]}"
        return base + "/v1" if self.format == "cohere" else base

    def reset(self) -> None:
        self.fault, self.requests, self.sleep_s = None, [], TIMEOUT_S + 1.5

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: dict) -> tuple[int, object]:
        fields, texts_key = (COHERE_FIELDS, "documents") if self.format == "cohere" else (TEI_FIELDS, "texts")
        required = {"model", "query", texts_key} if self.format == "cohere" else {"query", texts_key}
        texts = body.get(texts_key)
        if set(body) - fields or required - set(body) or not isinstance(texts, list) or not texts:
            return 422, {"message": f"bad request fields {sorted(body)}"}
        top_n = body.get("top_n", len(texts))
        if not isinstance(top_n, int) or top_n < 1:
            return 422, {"message": "top_n must be a positive integer"}
        if self.fault == "500":
            return 500, {"error": "the model crashed"}
        vectors = self._encoded([body["query"], *texts])
        scores = (vectors[1:] @ vectors[0]).tolist()
        self.requests[-1]["scores"] = scores
        best = sorted(range(len(texts)), key=lambda i: -scores[i])[:top_n]
        if self.fault == "fewer":
            best = best[:-1]
        if self.fault == "sleep":
            time.sleep(self.sleep_s)
        if self.format == "cohere":
            results = [{"index": i, "relevance_score": scores[i]} for i in best]
            answer = {"id": "rr-1", "results": results, "meta": {"billed_units": {"search_units": 1}}}
            return 200, results if self.fault == "shape" else answer
        results = [{"index": i, "score": scores[i]} for i in best]
        return 200, {"results": results} if self.fault == "shape" else results

    def warm(self, texts: list[str]) -> None:
        """Encode `texts` now, so that a request sending them is answered without the encoder."""
        self._encoded(texts)

    def _encoded(self, texts: list[str]) -> np.ndarray:
        new = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if new:
            self._vectors.update(zip(new, self.encoder.encode(new)))
        return np.stack([self._vectors[text] for text in texts])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                path = "/v1/rerank" if server.format == "cohere" else "/rerank"
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, answer = server.answer(body) if self.path == path else (404, {"error": "no route"})
                data = b"<html>oops</html>" if server.fault == "not_json" else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting (the timeout case)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def index(sample_index: Path) -> IndexVersion:
    return load_index(sample_index)


@pytest.fixture(scope="module", params=["cohere", "tei"])
def server(request: pytest.FixtureRequest, encoder: Encoder) -> Iterator[RerankServer]:
    served = RerankServer(encoder, request.param)
    yield served
    served.close()


@pytest.fixture
def endpoint(server: RerankServer) -> Iterator[Callable[..., EndpointReranker]]:
    """Makes clients of `server` (reset): by default patient, with the test key."""
    server.reset()
    made: list[EndpointReranker] = []

    def make(timeout_s: float = PATIENT_S, key: str | None = KEY) -> EndpointReranker:
        made.append(EndpointReranker(server.url, "test-reranker", key, server.format,  # type: ignore[arg-type]
                                     timeout_s))
        return made[-1]

    yield make
    for reranker in made:
        reranker.close()


def settings_for(sample_index: Path, **overrides) -> Settings:
    return Settings(index_dir=sample_index, per_article_cap=50, rerank_top_n=TOP_N, **overrides)


def fused_rows(index: IndexVersion, encoder: Encoder, sample_index: Path, question: str = QUESTION) -> list[int]:
    """The first TOP_K rows in fused order (what a search without a reranker shows)."""
    plain = Searcher(index, encoder, settings_for(sample_index))
    return [row for row, _ in plain.rank(question, depth=TOP_K)]


def reader_text(index: IndexVersion, row: int) -> str:
    chunk = index.chunks[row]
    return passage_text(index.articles[chunk.article_id].title, chunk.speaker, chunk.text)


def shown_ids(result) -> list[str]:
    return [p.chunk.id for p in result.passages]


def test_the_endpoint_s_scores_order_the_first_top_n(
    server: RerankServer, endpoint, index: IndexVersion, encoder: Encoder, sample_index: Path
) -> None:
    fused = fused_rows(index, encoder, sample_index)
    searcher = Searcher(index, encoder, settings_for(sample_index), reranker=endpoint())
    result = searcher.search(QUESTION, top_k=TOP_K)
    assert result.rerank_error is None and len(server.requests) == 1
    request = server.requests[0]
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    texts = body["documents"] if server.format == "cohere" else body["texts"]
    # The head of the fused order, each passage read with its title and speaker.
    assert texts == [reader_text(index, row) for row in fused[:TOP_N]]
    assert any(index.chunks[row].speaker and f"\n{index.chunks[row].speaker}: " in text
               for row, text in zip(fused, texts))
    if server.format == "cohere":
        assert body["model"] == "test-reranker" and body["top_n"] == TOP_N and body["query"] == QUESTION
    else:
        assert body["query"] == QUESTION and "model" not in body
    scores = request["scores"]
    by_server = [fused[i] for i in sorted(range(TOP_N), key=lambda i: -scores[i])]
    expected = by_server + fused[TOP_N:]  # the tail keeps the fused order
    assert shown_ids(result) == [index.chunks[row].id for row in expected]
    assert by_server != fused[:TOP_N]  # the cosines do reorder this head: the test has teeth


def test_no_key_sends_no_authorization(server: RerankServer, endpoint, encoder: Encoder, index: IndexVersion,
                                       sample_index: Path) -> None:
    Searcher(index, encoder, settings_for(sample_index), reranker=endpoint(key=None)).search(QUESTION)
    assert "Authorization" not in server.requests[0]["headers"]


FAULTS = [
    ("sleep", f"timed out after {TIMEOUT_S:g} s"),
    ("500", "answered HTTP 500"),
    ("shape", "answer is not"),
    ("fewer", f"answered {TOP_N - 1} scores for {TOP_N} passages"),
    ("not_json", "something other than JSON"),
]


@pytest.mark.parametrize(("fault", "says"), FAULTS, ids=[f for f, _ in FAULTS])
def test_a_failing_endpoint_leaves_the_fused_order_and_says_why(
    fault: str, says: str, server: RerankServer, endpoint, index: IndexVersion,
    encoder: Encoder, sample_index: Path,
) -> None:
    settings = settings_for(sample_index)
    plain, plain_signals = Searcher(index, encoder, settings).search_with_signals(QUESTION, top_k=TOP_K)
    server.fault = fault
    reranker = endpoint(TIMEOUT_S if fault == "sleep" else PATIENT_S)
    started = time.perf_counter()
    result, signals = Searcher(index, encoder, settings, reranker=reranker).search_with_signals(QUESTION, top_k=TOP_K)
    took = time.perf_counter() - started
    assert result.rerank_error is not None and says in result.rerank_error
    assert shown_ids(result) == shown_ids(plain)
    # The confidence stage read the same signals (no calibration is fitted with this reranker).
    assert signals == plain_signals and result.probability is None
    if fault == "sleep":  # the search waited for the reranker no longer than its timeout
        assert took < TIMEOUT_S + 1.0 and len(server.requests) == 1


def test_an_endpoint_that_refuses_connections(encoder: Encoder, index: IndexVersion, sample_index: Path) -> None:
    settings = settings_for(sample_index)
    plain = Searcher(index, encoder, settings).search(QUESTION, top_k=TOP_K)
    reranker = EndpointReranker(f"http://127.0.0.1:{free_port()}", "m", None, "cohere", TIMEOUT_S)
    result = Searcher(index, encoder, settings, reranker=reranker).search(QUESTION, top_k=TOP_K)
    reranker.close()
    assert (result.rerank_error or "").startswith("the rerank endpoint could not be reached")
    assert shown_ids(result) == shown_ids(plain)


@pytest.mark.slow
def test_a_follow_up_reranks_its_history_and_a_dead_reranker_costs_one_timeout(
    server: RerankServer, endpoint, index: IndexVersion, encoder: Encoder, sample_index: Path
) -> None:
    searcher = Searcher(index, encoder, settings_for(sample_index), reranker=endpoint())
    history = [KITCHEN, "Does he trust councils with the money?"]
    result = searcher.search("What should happen to the care budget, in his view?", history=history)
    assert result.rerank_error is None
    assert len(server.requests) >= 3  # each earlier question, then the follow-up
    asked = [r["body"]["query"] for r in server.requests]
    assert asked[0] == KITCHEN and asked[-1] == "What should happen to the care budget, in his view?"

    server.reset()
    server.fault = "sleep"
    searcher = Searcher(index, encoder, settings_for(sample_index), reranker=endpoint(TIMEOUT_S))
    started = time.perf_counter()
    result = searcher.search("What should happen to the care budget, in his view?", history=history)
    assert time.perf_counter() - started < TIMEOUT_S + 1.0
    assert len(server.requests) == 1 and "timed out" in (result.rerank_error or "")


def test_rank_is_reranked_and_refuses_to_pass_off_the_fused_order(
    server: RerankServer, endpoint, index: IndexVersion, encoder: Encoder, sample_index: Path
) -> None:
    searcher = Searcher(index, encoder, settings_for(sample_index), reranker=endpoint())
    fused = fused_rows(index, encoder, sample_index)
    ranked = [row for row, _ in searcher.rank(QUESTION, depth=TOP_K)]
    assert sorted(ranked[:TOP_N]) == sorted(fused[:TOP_N]) and ranked != fused
    server.fault = "500"
    with pytest.raises(RerankError, match="HTTP 500"):
        searcher.rank(QUESTION, depth=TOP_K)


def _rerank_failures(client: TestClient) -> float:
    lines = [line for line in client.get("/metrics").text.splitlines()
             if line.startswith("qa_rerank_failures_total ")]
    return float(lines[0].split()[-1])


@pytest.fixture
def cohere_server(encoder: Encoder) -> Iterator[RerankServer]:
    served = RerankServer(encoder, "cohere")  # the formats differ only in the client, tested above
    yield served
    served.close()


@pytest.mark.slow
def test_the_service_reports_a_failed_rerank_counts_it_and_does_not_cache_it(
    cohere_server: RerankServer, encoder: Encoder, sample_index: Path, index: IndexVersion
) -> None:
    server = cohere_server
    timeout_s = 1.5  # the service's own reranker must answer the healthy questions in time
    server.sleep_s = timeout_s + 1.5
    # The server scores with the encoder: it has the vectors of what it will be sent before the
    # clock runs, so that 1.5 s is the HTTP round trip's, not a larger model's on a busy machine.
    for question in (QUESTION, KITCHEN):
        sent = [reader_text(index, row) for row in fused_rows(index, encoder, sample_index, question)]
        server.warm([question, *sent])
    settings = ServiceSettings(
        index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, ask_rate_per_minute=0, per_article_cap=50,
        rerank_url=server.url, rerank_model="test-reranker", rerank_api_key=KEY,
        rerank_timeout_s=timeout_s, rerank_top_n=TOP_N,
    )
    with TestClient(create_app(settings, encoder=encoder)) as client:
        ask = {"question": QUESTION, "top_k": TOP_K}
        fine = client.post("/ask", json=ask)
        assert fine.status_code == 200 and fine.json()["rerank_error"] is None
        # The shipped calibration was fitted without a reranker: none applies, nothing is "high",
        # and /readyz says why.
        calibration = client.get("/readyz").json()["calibration"]
        assert "reranked by test-reranker" in calibration and "never 'high'" in calibration
        assert fine.json()["confidence"] == "low" and fine.json()["probability"] is None
        assert client.post("/ask", json=ask).json()["passages"] == fine.json()["passages"]
        assert len(server.requests) == 1  # the second asking was the cache's

        other = {"question": KITCHEN, "top_k": TOP_K}
        for fault, says in [("sleep", "timed out after 1.5 s"), ("500", "HTTP 500")]:
            server.fault = fault
            started = time.perf_counter()
            failed = client.post("/ask", json=other)
            assert time.perf_counter() - started < timeout_s + 1.0
            assert failed.status_code == 200 and says in failed.json()["rerank_error"]
            assert failed.json()["passages"]
        assert _rerank_failures(client) == 2  # neither failure was cached: both asked the reranker
        stream = client.post("/ask/stream", json=other)
        passages_event = json.loads(stream.text.split("data: ", 1)[1].split("\n", 1)[0])
        assert "HTTP 500" in passages_event["rerank_error"] and _rerank_failures(client) == 3

        server.fault = None
        healed = client.post("/ask", json=other).json()
        assert healed["rerank_error"] is None and healed["passages"] != failed.json()["passages"]
        asked = len(server.requests)
        client.post("/ask", json=other)
        assert len(server.requests) == asked  # now reranked, it is cached
        assert _rerank_failures(client) == 3


def test_the_service_stays_up_when_the_reranker_is_unreachable(encoder: Encoder, sample_index: Path) -> None:
    settings = ServiceSettings(
        index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, ask_rate_per_minute=0,
        rerank_url=f"http://127.0.0.1:{free_port()}", rerank_timeout_s=TIMEOUT_S,
    )
    with TestClient(create_app(settings, encoder=encoder)) as client:
        response = client.get("/ask", params={"q": QUESTION})
        assert response.status_code == 200 and "could not be reached" in response.json()["rerank_error"]
        assert _rerank_failures(client) == 1


def _cohere(*results: tuple[object, object]) -> dict:
    return {"results": [{"index": index, "relevance_score": score} for index, score in results]}


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (_cohere((0, 0.1), (2, 0.2)), "index 2 for 2"),
        (_cohere((0, 0.1), (-1, 0.2)), "index -1 for 2"),
        (_cohere((0, 0.1), (0, 0.2)), "index 0 twice"),
        (_cohere((0, "high"), (1, 0.2)), "not a number"),
        (_cohere((0, True), (1, 0.2)), "not a number"),
        (_cohere((0, float("nan")), (1, 0.2)), "not a number"),
        (_cohere(("0", 0.1), (1, 0.2)), "index '0'"),
        (_cohere((1, 0.9)), "1 scores for 2 passages"),
        ({"results": [{"index": 0, "score": 0.1}, {"index": 1, "score": 0.2}]}, "not a number: None"),
        ({"results": "none"}, "answer is not"),
        ([{"index": 0, "score": 0.1}], "answer is not"),
    ],
)
def test_read_scores_refuses_what_does_not_score_every_passage_once(answer: object, says: str) -> None:
    with pytest.raises(RerankError, match=says):
        read_scores(answer, "cohere", 2)


def test_read_scores_reads_by_index_whatever_the_order() -> None:
    answer = {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.2}]}
    assert read_scores(answer, "cohere", 2) == [0.2, 0.9]
    assert read_scores([{"index": 1, "score": 3}, {"index": 0, "score": -1.5}], "tei", 2) == [-1.5, 3.0]
    with pytest.raises(RerankError, match="index 0 twice"):
        read_scores([{"index": 0, "score": 1.0}, {"index": 0, "score": 1.0}], "tei", 2)


def test_make_reranker_follows_the_settings() -> None:
    assert make_reranker(Settings()) is None
    endpoint = make_reranker(Settings(rerank_url="http://127.0.0.1:9/v1/", rerank_format="tei",
                                      rerank_timeout_s=1.5, rerank_api_key="k"))
    assert isinstance(endpoint, EndpointReranker)
    assert endpoint.url == "http://127.0.0.1:9/v1/rerank" and endpoint.timeout_s == 1.5
    same = Settings(rerank_url="http://127.0.0.1:9/v1", rerank_format="tei")
    assert endpoint.spec == RerankSpec.from_settings(same)
    endpoint.close()
    local = make_reranker(Settings(rerank="/models/bge-reranker"))
    assert isinstance(local, CrossEncoderReranker)
    assert local.spec == RerankSpec("cross-encoder", "/models/bge-reranker")


# The cross-encoder: a real sentence-transformers CrossEncoder, made from the packaged MiniLM
# with a new one-score head and saved, as a cross-encoder checkpoint is.


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    from sentence_transformers import CrossEncoder

    encoder.load_model()  # torch and transformers are imported once for the session
    folder = tmp_path_factory.mktemp("cross-encoder")
    CrossEncoder(resolve_model_path(DEFAULT_MODEL), num_labels=1, device="cpu").save(str(folder))
    return folder


class Recording:
    """A reranker's calls and answers, kept."""

    def __init__(self, inner: CrossEncoderReranker) -> None:
        self.inner, self.spec, self.calls = inner, inner.spec, []

    def scores(self, question, texts):
        scores = self.inner.scores(question, texts)
        self.calls.append((question, list(texts), scores))
        return scores


@pytest.mark.slow
def test_a_cross_encoder_s_scores_order_the_first_top_n(
    cross_encoder_dir: Path, index: IndexVersion, encoder: Encoder, sample_index: Path
) -> None:
    reranker = Recording(CrossEncoderReranker(str(cross_encoder_dir)))
    reranker.inner.warm_up()
    fused = fused_rows(index, encoder, sample_index)
    result = Searcher(index, encoder, settings_for(sample_index), reranker=reranker).search(QUESTION, top_k=TOP_K)
    assert result.rerank_error is None and len(reranker.calls) == 1
    question, texts, scores = reranker.calls[0]
    assert question == QUESTION and texts == [reader_text(index, row) for row in fused[:TOP_N]]
    assert len(scores) == TOP_N and all(isinstance(s, float) for s in scores)
    expected = [fused[i] for i in sorted(range(TOP_N), key=lambda i: -scores[i])] + fused[TOP_N:]
    assert shown_ids(result) == [index.chunks[row].id for row in expected]
    model = reranker.inner._model
    Searcher(index, encoder, settings_for(sample_index), reranker=reranker).search(KITCHEN)
    assert reranker.inner._model is model  # loaded once


def test_an_embedding_model_is_not_taken_for_a_cross_encoder(cross_encoder_dir: Path) -> None:
    # cross_encoder_dir: torch and sentence-transformers are loaded already.
    reranker = CrossEncoderReranker(resolve_model_path(DEFAULT_MODEL))
    with pytest.raises(RerankError, match="is not a cross-encoder"):
        reranker.scores("q", ["a", "b"])


def test_a_cross_encoder_that_fails_to_load_is_loaded_once_and_says_why(
    monkeypatch: pytest.MonkeyPatch, index: IndexVersion, encoder: Encoder, sample_index: Path
) -> None:
    loads = []

    def failing(model: str):
        loads.append(model)
        time.sleep(0.1)  # long enough for the other threads to wait on the lock
        raise RerankError(f"cannot load cross-encoder {model!r}: no such folder")

    monkeypatch.setattr(rerankers, "load_cross_encoder", failing)
    reranker = CrossEncoderReranker("/nowhere/reranker")
    errors = []
    threads = [threading.Thread(target=lambda: errors.append(_error_of(reranker))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["/nowhere/reranker"] and len(errors) == 4
    result = Searcher(index, encoder, settings_for(sample_index), reranker=reranker).search(QUESTION)
    assert result.rerank_error == "cannot load cross-encoder '/nowhere/reranker': no such folder"
    assert len(loads) == 1 and result.passages


def test_a_missing_cross_encoder_says_so() -> None:
    with pytest.raises(RerankError, match="cannot load cross-encoder '/nowhere/reranker'"):
        rerankers.load_cross_encoder("/nowhere/reranker")


def _error_of(reranker: CrossEncoderReranker) -> str | None:
    try:
        reranker.scores("q", ["a", "b"])
    except RerankError as exc:
        return str(exc)
    return None


def test_scores_of_a_cross_encoder_with_several_labels_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class TwoLabels:
        def predict(self, pairs, **kwargs):
            return np.zeros((len(pairs), 2), dtype=np.float32)

    monkeypatch.setattr(rerankers, "load_cross_encoder", lambda model: TwoLabels())
    with pytest.raises(RerankError, match="gives 2 scores per passage"):
        CrossEncoderReranker("two-labels").scores("q", ["a", "b"])


@pytest.mark.slow
def test_qa_calibrate_fits_a_calibration_for_the_reranker_it_runs_with(
    cohere_server: RerankServer, encoder: Encoder, sample_index: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """qa-calibrate searches with the configured reranker and keys the calibration to it: the
    same index answers with it only when that reranker is configured."""
    from index.calibrate import main as calibrate

    index_dir = tmp_path / "index"
    shutil.copytree(sample_index, index_dir)
    for name, value in {"QA_RERANK_URL": cohere_server.url, "QA_RERANK_MODEL": "test-reranker",
                        "QA_RERANK_API_KEY": KEY, "QA_RERANK_TIMEOUT_S": str(PATIENT_S)}.items():
        monkeypatch.setenv(name, value)
    labelled = tmp_path / "tune.jsonl"  # 40 tune-only questions: enough right and wrong to fit on
    labelled.write_text("".join((REPO / "eval" / "extra.jsonl").read_text().splitlines(True)[:40]))
    assert calibrate([str(labelled), "--index", str(index_dir)]) == 0
    stored = json.loads((index_dir / "calibration.json").read_text())
    assert stored["reranker"] == {"kind": "endpoint", "model": "test-reranker", "format": "cohere"}
    assert cohere_server.requests  # its searches were reranked

    settings = Settings(index_dir=index_dir)
    reranker = EndpointReranker(cohere_server.url, "test-reranker", KEY, "cohere", PATIENT_S)
    try:
        with_it = Searcher(load_index(index_dir), encoder, settings, reranker=reranker)
        assert with_it.calibration.calibration is not None and "qa-calibrate" in with_it.calibration.reason
    finally:
        reranker.close()
    without = Searcher(load_index(index_dir), encoder, settings)
    assert "not used" in without.calibration.reason  # the shipped one, for no reranker
