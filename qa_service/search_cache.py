"""Recent searches of the served index version, for the questions a widget's readers ask again
and again. Bounded (least recently used first out) and emptied when the version changes, so a
cached result is always what searching the served version would give."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from index.records import SearchResult


class SearchCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, SearchResult] = OrderedDict()
        self._version: str | None = None
        self._lock = threading.Lock()

    def get(self, version: str, key: Hashable, search: Callable[[], SearchResult]) -> tuple[SearchResult, bool]:
        """The result for `key` in `version`, from the cache or from `search()`; and whether it
        was cached. A cached result reports the time this lookup took."""
        started = time.perf_counter()
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
        if cached is not None:
            return dataclasses.replace(cached, took_ms=round((time.perf_counter() - started) * 1000, 2)), True
        result = search()  # outside the lock: other questions go on meanwhile
        with self._lock:
            if version == self._version and self.size:
                self._entries[key] = result
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return result, False
