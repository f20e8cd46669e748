"""A bound on the searches a process runs at once (QA_MAX_CONCURRENT_SEARCHES): a burst of
questions waits a little in a short queue, and beyond it is refused (503 with Retry-After at
/ask, a tool error over MCP) instead of each extra question holding its own search's memory.

A heavy request (a long question, or many long earlier questions to search again) may hold at
most half the slots, and waits in its own line: a burst of expensive requests cannot make a
reader's short question wait behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from qa_service.schemas import AskRequest

# A request that asks for more than this many characters to be searched (its question and the
# earlier questions of its history) is heavy; a reader's question with a few earlier ones is
# well below it.
HEAVY_CHARS = 500


class Busy(Exception):
    """Every search slot is taken and the queue is full, or the wait for a slot ran out."""

    retry_after_s = 1


class SearchSlots:
    """At most `limit` searches at once, at most half of them (at least one) heavy; up to `queue`
    more of each kind wait, each at most `wait_s`, for a slot; any beyond those are refused at
    once. Used from the event loop only."""

    def __init__(self, limit: int, queue: int, wait_s: float) -> None:
        heavy_limit = max(1, limit // 2)
        self._free = asyncio.Semaphore(limit)
        self._heavy = asyncio.Semaphore(heavy_limit)
        self._room = {False: limit + queue, True: heavy_limit + queue}  # running or waiting
        self._admitted = {False: 0, True: 0}
        self._wait_s = wait_s

    @asynccontextmanager
    async def slot(self, heavy: bool = False) -> AsyncIterator[None]:
        if self._admitted[heavy] >= self._room[heavy]:
            raise Busy
        self._admitted[heavy] += 1
        held: list[asyncio.Semaphore] = []
        try:
            try:
                async with asyncio.timeout(self._wait_s):
                    for semaphore in (self._heavy, self._free) if heavy else (self._free,):
                        await semaphore.acquire()
                        held.append(semaphore)
            except TimeoutError:
                raise Busy from None
            yield
        finally:
            for semaphore in held:
                semaphore.release()
            self._admitted[heavy] -= 1


def searched_chars(query_question: str, asked: AskRequest | None) -> int:
    """How many characters a request asks to be searched: the question (`q` of a GET, or the
    body's) and the earlier questions (user turns) of its history; the answers it quotes back
    are not searched."""
    if asked is None:
        return len(query_question)
    return len(asked.question) + sum(len(turn.content) for turn in asked.history if turn.role == "user")
