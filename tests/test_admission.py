"""The search slots on their own (qa_service/admission.py): heavy requests hold at most half of
them, so a short question is not kept waiting behind a burst of long ones."""

from __future__ import annotations

import asyncio
import json

import pytest

from qa_service.admission import Busy, SearchSlots, searched_chars


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
        ("who argues?", b"", 11),
        ("", json.dumps({"question": "why?", "history": [
            {"role": "user", "content": "who argues against means-testing?"},
            {"role": "assistant", "content": "x" * 2000},  # answers shown are not searched
        ]}).encode(), 4 + 33),
        ("", b"not json", 0),
        ("", b"[1, 2]", 0),
        ("", json.dumps({"question": 7, "history": "no"}).encode(), 0),
    ],
)
def test_searched_chars_counts_the_question_and_the_earlier_questions(query: str, body: bytes, chars: int) -> None:
    assert searched_chars(query, body) == chars
