"""A bound on the searches a process runs at once (QA_MAX_CONCURRENT_SEARCHES): a burst of
questions waits a little in a short queue, and beyond it is refused (503 with Retry-After at
/ask, a tool error over MCP) instead of each extra question holding its own search's memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Busy(Exception):
    """Every search slot is taken and the queue is full, or the wait for a slot ran out."""

    retry_after_s = 1


class SearchSlots:
    """At most `limit` searches at once; up to `queue` more wait, each at most `wait_s`, for a
    slot; any beyond those are refused at once. Used from the event loop only."""

    def __init__(self, limit: int, queue: int, wait_s: float) -> None:
        self._free = asyncio.Semaphore(limit)
        self._room = limit + queue  # searches running or waiting
        self._wait_s = wait_s
        self._admitted = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._admitted >= self._room:
            raise Busy
        self._admitted += 1
        try:
            try:
                async with asyncio.timeout(self._wait_s):
                    await self._free.acquire()
            except TimeoutError:
                raise Busy from None
            try:
                yield
            finally:
                self._free.release()
        finally:
            self._admitted -= 1
