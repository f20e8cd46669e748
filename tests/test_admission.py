"""The search slots (qa_service/admission.py): heavy requests hold at most half of them, so a
short question is not kept waiting behind a burst of long ones; a malformed request holds none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from index.encoder import Encoder
from qa_service.admission import Busy, SearchSlots, searched_chars
from qa_service.schemas import AskRequest
from tests.test_service import copy_service_dirs, make_client


def test_a_short_question_gets_a_slot_while_heavy_ones_wait_or_are_refused() -> None:
    async def scenario() -> None:
        slots = SearchSlots(limit=2, queue=1, wait_s=0.2)  # one heavy slot, one heavy may wait
        release = asyncio.Event()

        async def hold(heavy: bool) -> None:
            async with slots.slot(heavy):
                await release.wait()

        running = asyncio.create_task(hold(heavy=True))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(hold(heavy=True))  # queued behind the heavy slot
        await asyncio.sleep(0)
        with pytest.raises(Busy):  # a third heavy one finds the heavy line full
            async with slots.slot(heavy=True):
                pass
        async with asyncio.timeout(0.1):  # a light one is not in that line
            async with slots.slot(heavy=False):
                pass
        with pytest.raises(Busy):  # the queued heavy one gives up after wait_s
            await waiting
        release.set()
        await running
        async with asyncio.timeout(0.1):  # every slot was given back
            async with slots.slot(heavy=True), slots.slot(heavy=False):
                pass

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("query", "body", "chars"),
    [
        ("who argues?", None, 11),
        ("", {"question": "why?", "history": [
            {"role": "user", "content": "who argues against means-testing?"},
            {"role": "assistant", "content": "x" * 2000},  # answers shown are not searched
        ]}, 4 + 33),
    ],
)
def test_searched_chars_counts_the_question_and_the_earlier_questions(query: str, body: dict | None, chars: int) -> None:
    assert searched_chars(query, None if body is None else AskRequest.model_validate(body)) == chars


@pytest.mark.slow
def test_a_request_refused_as_malformed_takes_no_search_slot(
    tmp_path: Path, sample_index: Path, encoder: Encoder
) -> None:
    # No slot at all: every search is refused with 503, yet a malformed request is told what
    # is wrong with it (422), since it will search nothing.
    with make_client(*copy_service_dirs(tmp_path, sample_index), encoder) as client:
        client.app.state.service.searches = SearchSlots(limit=0, queue=0, wait_s=0.05)
        assert client.post("/ask", json={"question": "who argues against means-testing?"}).status_code == 503
        too_long = {"question": "why?", "history": [{"role": "user", "content": "x" * 1500}]}
        for body in (too_long, {"question": ""}, {"top_k": 3}):
            answer = client.post("/ask", json=body)
            assert answer.status_code == 422, (body, answer.text)
        bad_json = client.post("/ask", content=b"{not json", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400, bad_json.text  # as without the slots: not a 503
