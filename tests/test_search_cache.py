"""The search cache's bounds (issue 32): keys are fixed-size digests, so long histories are not
held; its estimated bytes stay under QA_SEARCH_CACHE_BYTES; the same question hits. Real
searches of the sample index, and the real app for a follow-up asked twice."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from index.conversation import HISTORY_TURNS_USED, MAX_EARLIER_QUESTION_CHARS
from index.encoder import Encoder
from index.records import Filters, SearchResult
from index.search import Searcher
from qa_service.app import create_app
from qa_service.search_cache import DIGEST_BYTES, SearchCache, key_digest, result_bytes
from qa_service.settings import ServiceSettings
from tests.conftest import SAMPLE_ARTICLES

KITCHEN = "Who compares healthcare to having a kitchen replaced?"
COUNCILS = "Does he trust councils with the money?"


def _history(number: int, turns: int = 20, chars: int = MAX_EARLIER_QUESTION_CHARS) -> tuple[str, ...]:
    """A distinct history of long turns, as a reader filling the cache would send."""
    return tuple(f"{number} turn {turn} " + "why " * (chars // 4 - 5) for turn in range(turns))


@pytest.fixture(scope="module")
def results(searcher: Searcher) -> list[SearchResult]:
    """Real results of the sample index, of several sizes."""
    return [searcher.search(question, top_k=top_k) for question, top_k in (
        (KITCHEN, 20), ("who argues against means-testing?", 5), ("How much have A&E visits gone up?", 10),
    )]


def test_distinct_long_histories_stay_within_the_byte_bound(results: list[SearchResult]) -> None:
    bound = 40 * max(result_bytes(r) for r in results)
    cache = SearchCache(size=1000, max_bytes=bound)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(300):
            key = (COUNCILS, 20, None, _history(number))  # as routes/ask.py builds it
            cache.get(("v1", None), key, lambda number=number: results[number % len(results)])
            assert cache.bytes <= bound
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Far fewer than the 300 asked fit in the bound, the newest; the cache holds about what it
    # counts, and not the 300 x 20 earlier questions of 1,000 characters (6 MB) it was sent.
    assert 20 <= len(cache) < 300 and cache.bytes <= bound
    assert held < 2 * bound < 6_000_000 / 5
    assert all(len(digest) == DIGEST_BYTES for digest in cache._entries)
    newest = (COUNCILS, 20, None, _history(299))
    assert cache.get(("v1", None), newest, lambda: pytest.fail("the newest was evicted"))[1] is True


def test_the_same_question_hits_and_others_miss(results: list[SearchResult]) -> None:
    cache = SearchCache(size=100)
    version = ("v1", 123)
    filters = Filters(article_ids=frozenset(["a", "b", "c"]), sections=frozenset(["body"]))
    key = (KITCHEN, None, filters, ("Who said it?",))
    first, cached = cache.get(version, key, lambda: results[0])
    assert not cached and first is results[0]
    # The same key built again (a set's items added in another order) is a hit.
    same_filters = Filters(article_ids=frozenset(["c", "b", "a"]), sections=frozenset(["body"]))
    again, cached = cache.get(version, (KITCHEN, None, same_filters, ("Who said it?",)), lambda: results[1])
    assert cached and again.passages == first.passages
    # Anything else of what was asked is another search.
    for other in [
        (KITCHEN + "?", None, filters, ("Who said it?",)),
        (KITCHEN, 3, filters, ("Who said it?",)),
        (KITCHEN, None, None, ("Who said it?",)),
        (KITCHEN, None, filters, ("Who said", "it?")),
        (KITCHEN, None, filters, ()),
    ]:
        assert cache.get(version, other, lambda: results[1])[1] is False
    # A new version (or calibration) empties it.
    assert cache.get(("v1", 124), key, lambda: results[1])[1] is False
    assert len(cache) == 1


def test_digests_are_fixed_size_and_tell_keys_apart() -> None:
    long = ("x" * 30_000,) * 20
    assert len(key_digest("v", (KITCHEN, None, None, long))) == DIGEST_BYTES
    assert key_digest("v", ("ab", "c")) != key_digest("v", ("a", "bc"))
    assert key_digest("v", (1, None)) != key_digest("v", ("1", None))
    assert key_digest("v", (True,)) != key_digest("v", (1,))
    assert key_digest("v", ("\ud800",)) == key_digest("v", ("\ud800",))  # a lone surrogate, as JSON allows


def test_a_result_larger_than_the_bound_is_not_kept(results: list[SearchResult]) -> None:
    cache = SearchCache(size=10, max_bytes=result_bytes(results[1]))
    cache.get("v", ("big",), lambda: results[0])  # 20 passages: over the bound
    assert len(cache) == 0 and cache.bytes == 0
    cache.get("v", ("small",), lambda: results[1])
    assert len(cache) == 1 and cache.bytes == result_bytes(results[1])


def test_a_follow_up_with_a_long_history_hits_through_the_app(
    sample_index: Path, encoder: Encoder, tmp_path: Path
) -> None:
    settings = ServiceSettings(index_dir=sample_index, articles_dir=SAMPLE_ARTICLES, ask_rate_per_minute=0,
                               question_log_path=tmp_path / "questions.sqlite")
    older = [{"role": role, "content": f"{role} {n} " + "so " * (320 if role == "user" else 640)}
             for n in range(9) for role in ("user", "assistant")]
    history = [*older, {"role": "user", "content": KITCHEN}, {"role": "assistant", "content": "Simon Duffy."}]
    asked = {"question": COUNCILS, "history": history}
    with TestClient(create_app(settings, encoder=encoder)) as client:
        first, again = (client.post("/ask", json=asked) for _ in range(2))
        assert first.status_code == again.status_code == 200, first.text
        assert first.json()["passages"] == again.json()["passages"]
        cache = client.app.state.service.search_cache
        assert len(cache) == 1 and cache.bytes < 20_000
        hits = [line for line in client.get("/metrics").text.splitlines()
                if line.startswith('qa_search_cache_total{result="hit"}')]
        assert hits and float(hits[0].split()[-1]) == 1
        # The search resolved the follow-up with the latest turns only: the same passages
        # as with those turns alone.
        latest = [turn for turn in history if turn["role"] == "user"][-HISTORY_TURNS_USED:]
        alone = client.post("/ask", json={"question": COUNCILS, "history": latest}).json()
        assert [p["text"] for p in alone["passages"]] == [p["text"] for p in first.json()["passages"]]
