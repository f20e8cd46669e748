"""Per-client rate limits (/ask and the MCP tool, /feedback): a token bucket per client address.

Each client may burst `burst` requests, then `per_minute` a minute. Buckets that have refilled
are forgotten, so memory stays bounded by the clients active in the last minute or so.
"""

from __future__ import annotations

import math
import threading
import time

_PRUNE_AT = 10_000  # buckets kept before full ones are dropped


class RateLimiter:
    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last update)
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Take one token for `client`; None if it may proceed, else whole seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > _PRUNE_AT:
                    self._prune(now)
                return None
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _prune(self, now: float) -> None:
        full = [c for c, (t, last) in self._buckets.items() if t + (now - last) * self.rate >= self.burst]
        for client in full:
            del self._buckets[client]


class RateLimited(Exception):
    """A client over its rate; the message says so, and when to try again (`retry_after`, s)."""

    def __init__(self, too_much: str, client: str, retry_after: int) -> None:
        super().__init__(f"{too_much} from {client}; try again in {retry_after} s")
        self.retry_after = retry_after


def admit(limiter: RateLimiter | None, client: str, too_much: str) -> None:
    """Take one of `client`'s tokens, or raise RateLimited ("too many questions from ...",
    with `too_much` first); no limiter, no limit."""
    wait = None if limiter is None else limiter.retry_after(client)
    if wait is not None:
        raise RateLimited(too_much, client, wait)
