"""The MCP server through the SDK's own client: over HTTP against the real app served by uvicorn
on 127.0.0.1 (/mcp), and over stdio against `qa-mcp` started as a desktop assistant starts it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from index.encoder import Encoder
from index.search import Searcher
from qa_service.app import create_app
from qa_service.mcp_server import archive_server
from qa_service.ratelimit import RateLimiter
from qa_service.settings import ServiceSettings
from tests.conftest import REPO, free_port
from tests.test_service import TOKEN, copy_service_dirs

QUESTION = "who argues against means-testing?"
OUT_OF_SCOPE = "Who won the 2018 World Cup?"


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, encoder: Encoder) -> Iterator[str]:
    """The real app, served by uvicorn on 127.0.0.1 (the SDK's HTTP client needs a real URL)."""
    root = tmp_path_factory.mktemp("mcp")
    articles, index = copy_service_dirs(root, sample_index)
    settings = ServiceSettings(index_dir=index, articles_dir=articles, admin_token=TOKEN,
                               ask_rate_per_minute=0, question_log_path=root / "questions.sqlite")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, encoder=encoder), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


async def ask(client: Client, question: str, **arguments: object) -> tuple[bool, str, dict | None]:
    result = await client.call_tool("ask_archive", {"question": question, **arguments})
    return result.is_error, result.content[0].text, result.structured_content


def check_archive(target: str | StdioServerParameters) -> None:
    asyncio.run(_check_archive(target))


async def _check_archive(target: str | StdioServerParameters) -> None:
    """What any MCP client sees of the sample archive, by either transport."""
    async with Client(target) as client:
        await _check_tool(client)


async def _check_tool(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    schema = tools["ask_archive"].input_schema
    assert schema["required"] == ["question"]
    assert schema["properties"]["top_k"]["minimum"] == 1 and tools["ask_archive"].output_schema

    failed, text, answer = await ask(client, QUESTION, top_k=3)
    assert not failed and answer is not None
    assert not answer["abstained"] and 1 <= len(answer["passages"]) <= 3
    # Means-testing is argued against in one article only, by its author.
    assert answer["passages"][0]["speaker"] == "Simon Duffy"
    listed = {r.uri: r for r in (await client.list_resources()).resources}
    assert len(listed) == 5 and all(r.mime_type == "text/plain" for r in listed.values())
    for passage in answer["passages"]:
        # The text names each passage with its place; the offsets index the article's resource.
        assert f"[{passage['rank']}] {passage['title']}" in text and passage["text"] in text
        uri = f"article://{passage['article_id']}"
        assert listed[uri].title == passage["title"]
        article = (await client.read_resource(uri)).contents[0].text
        assert article[passage["start"] : passage["end"]] == passage["text"]

    failed, text, answer = await ask(client, OUT_OF_SCOPE)
    assert not failed and answer["abstained"] and answer["passages"] == []
    assert text == "Nothing in the archive answers that question."

    failed, text, _ = await ask(client, QUESTION, top_k=0)
    assert failed and "top_k" in text
    failed, text, _ = await ask(client, "x" * 1001)
    assert failed and "the limit is 1000" in text
    with pytest.raises(MCPError, match="no article 'nope'"):
        await client.read_resource("article://nope")


@pytest.mark.slow
def test_mcp_tool_over_http(service_url: str) -> None:
    check_archive(f"{service_url}/mcp")

    # Questions through the tool reach the question log editors read, as /ask's do.
    request = urllib.request.Request(f"{service_url}/admin/insights",
                                     headers={"authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        insights = json.loads(response.read())
    asked = {entry["question"] for entry in insights["most_asked"]}
    assert {QUESTION, OUT_OF_SCOPE} <= asked
    # Nothing is pushed, so a GET (an idle event stream the SDK would hold open) is refused.
    for accept in ("*/*", "text/event-stream"):
        get = urllib.request.Request(f"{service_url}/mcp", headers={"accept": accept})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(get, timeout=10)
        assert refused.value.code == 405


@pytest.mark.slow
def test_mcp_tool_answers_through_the_search_cache_as_ask_does(service_url: str) -> None:
    question = "What is missing from the NHS Long Term Plan?"  # asked nowhere else in this module

    def counted() -> dict[str, float]:
        with urllib.request.urlopen(f"{service_url}/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        wanted = ('qa_search_cache_total{result="hit"}', 'qa_search_cache_total{result="miss"}',
                  'qa_http_requests_total{method="POST",route="/mcp",status="200"}')
        found = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if not line.startswith("#")}
        return {name: found.get(name, 0.0) for name in wanted}

    async def twice() -> None:
        async with Client(f"{service_url}/mcp") as client:
            for _ in range(2):
                failed, _text, answer = await ask(client, question)
                assert not failed and answer is not None and answer["passages"]

    before = counted()
    asyncio.run(twice())
    after = counted()
    hits, misses, requests = (after[name] - before[name] for name in before)
    assert (hits, misses) == (1, 1)  # searched once, then from the cache, as /ask would be
    assert requests >= 2  # counted under the route's own path, not "unmatched"


@pytest.mark.slow
def test_mcp_tool_over_stdio(sample_index: Path) -> None:
    command = StdioServerParameters(
        command=str(Path(sys.executable).parent / "qa-mcp"), args=["--index", str(sample_index)],
        cwd=str(REPO), env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    check_archive(command)


def test_mcp_tool_without_an_index_and_over_its_rate() -> None:
    async def check(searcher: Searcher | None, limiter: RateLimiter | None) -> list[tuple[bool, str]]:
        async with Client(archive_server(lambda: searcher, limiter=limiter)) as client:
            assert (await client.list_resources()).resources == []
            return [(await ask(client, QUESTION))[:2] for _ in range(2)]

    failed, text = asyncio.run(check(None, None))[0]
    assert failed and "no index is loaded yet: build one with qa-ingest" in text
    first, second = asyncio.run(check(None, RateLimiter(per_minute=1, burst=1)))
    assert "no index" in first[1]
    assert second[0] and "too many questions from" in second[1] and "try again in" in second[1]
