"""Article links: only absolute http(s) URLs leave the API, whatever the index on disk holds.

An index written before links were checked may hold `javascript:` or relative URLs; it is made
here the way such a release wrote it (the real chunker, encoder and publish, with the link
as it was in the article's metadata)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index import store
from index.encoder import Encoder
from index.records import ArticleRecord, web_link
from index.settings import Settings
from ingest.build import article_chunks
from ingest.chunk import Chunker
from ingest.pipeline import chunking_params, dense_options
from qa_service.app import create_app
from qa_service.settings import ServiceSettings
from tests.conftest import SAMPLE_ARTICLES

LINKS = {
    "zz_script_link": "javascript:alert(document.cookie)",
    "zz_data_link": "data:text/html,<script>alert(1)</script>",
    "zz_relative_link": "/news/2019/lighthouses",
    "zz_web_link": "https://news.example.org/2019/lighthouses",
}
TEXT = (
    "The keepers of the {name} lighthouse polished the brass lanterns with beeswax every "
    "Sunday, and logged every ship that passed through the firth."
)


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://news.example.org/a/1?x=2#c", "https://news.example.org/a/1?x=2#c"),
        ("HTTP://News.Example.org", "http://news.example.org/"),
        ("javascript:alert(1)", None), ("JAVASCRIPT:alert(1)", None), ("java\tscript:alert(1)", None),
        ("data:text/html,x", None), ("ftp://example.org/f", None), ("/relative", None),
        ("//example.org/protocol-relative", None), ("https://", None), ("", None), (None, None),
    ],
)
def test_web_link(url: str | None, link: str | None) -> None:
    assert web_link(url) == link


@pytest.fixture(scope="module")
def old_index(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, encoder: Encoder) -> Path:
    index_dir = tmp_path_factory.mktemp("links") / "index"
    shutil.copytree(sample_index, index_dir)
    settings = Settings(index_dir=index_dir)
    chunker = Chunker(encoder.tokenizer, settings.chunk_tokens, settings.chunk_overlap_tokens)
    articles = [ArticleRecord(id=i, text=TEXT.format(name=i.split("_")[1]), content_hash=i, title=f"Keepers {i}", url=u)
                for i, u in sorted(LINKS.items())]
    chunks = [chunk for article in articles for chunk in article_chunks(article, chunker)]
    vectors = np.asarray(encoder.encode([c.text for c in chunks]), dtype=np.float32)
    with store.ingest_lock(index_dir):
        store.publish(index_dir, base=store.open_for_update(index_dir), new=store.NewArticles(articles, chunks, vectors),
                      model=settings.model, chunking=chunking_params(settings), keep_versions=2,
                      dense=dense_options(settings))
    return index_dir


def test_the_api_returns_only_web_links_from_an_index_that_holds_others(
    old_index: Path, encoder: Encoder
) -> None:
    settings = ServiceSettings(index_dir=old_index, articles_dir=SAMPLE_ARTICLES, ask_rate_per_minute=0)
    with TestClient(create_app(settings, encoder=encoder)) as client:
        for article_id, url in LINKS.items():
            assert client.get(f"/articles/{article_id}").json()["url"] == web_link(url)
        listed = {a["id"]: a["url"] for a in client.get("/articles", params={"limit": 100}).json()["articles"]}
        assert {i: listed[i] for i in LINKS} == {i: web_link(u) for i, u in LINKS.items()}
        passages = client.post("/ask", json={"question": "Who polished the brass lanterns with beeswax?",
                                             "top_k": 10}).json()["passages"]
        shown = {p["article_id"]: p["url"] for p in passages if p["article_id"] in LINKS}
        assert len(shown) == len(LINKS), passages
        assert shown == {i: web_link(u) for i, u in LINKS.items()}
        assert shown["zz_web_link"] == "https://news.example.org/2019/lighthouses"
