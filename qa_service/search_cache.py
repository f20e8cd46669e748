"""Recent searches of the served index version, for the questions a widget's readers ask again
and again. Emptied when the version changes, so a cached result is always what searching the
served version would give.

Bounded twice, least recently used first out: by entries, and by an estimate of the bytes the
cached results hold. A result's key is a 16-byte digest of what was asked (question, history,
filters, top_k and the version), never the question and history themselves: a reader who sends
long distinct histories fills the cache with digests, not with their text.

A result whose reranker failed (`rerank_error`) is not kept: the next asking reranks again, so
answers improve as soon as the reranker is back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from index.records import Passage, SearchResult

DEFAULT_MAX_BYTES = 64 * 2**20
DIGEST_BYTES = 16
# An entry's fixed cost besides its result: the ordered dict's node and slot, the digest's
# bytes object, the (result, size) tuple (measured with tracemalloc: within 5% of the estimate).
ENTRY_BYTES = 600


class SearchCache:
    def __init__(self, size: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0  # the estimated size of what is held
        self._entries: OrderedDict[bytes, tuple[SearchResult, int]] = OrderedDict()
        self._version: Hashable | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, version: Hashable, key: Hashable, search: Callable[[], SearchResult]) -> tuple[SearchResult, bool]:
        """The result for `key` in `version`, from the cache or from `search()`; and whether it
        was cached. A cached result reports the time this lookup took."""
        started = time.perf_counter()
        digest = key_digest(version, key)
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self.bytes = 0
                self._version = version
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries.move_to_end(digest)
        if entry is not None:
            return dataclasses.replace(entry[0], took_ms=round((time.perf_counter() - started) * 1000, 2)), True
        result = search()  # outside the lock: other questions go on meanwhile
        self._put(version, digest, result)
        return result, False

    def _put(self, version: Hashable, digest: bytes, result: SearchResult) -> None:
        if result.rerank_error is not None:
            return  # the fused order, for want of the reranker: ask it again next time
        size = result_bytes(result)
        with self._lock:
            if version != self._version or not self.size or size > self.max_bytes:
                return
            previous = self._entries.pop(digest, None)  # another thread searched it meanwhile
            if previous is not None:
                self.bytes -= previous[1]
            self._entries[digest] = (result, size)
            self.bytes += size
            while len(self._entries) > self.size or self.bytes > self.max_bytes:
                self.bytes -= self._entries.popitem(last=False)[1][1]


def key_digest(version: Hashable, key: Hashable) -> bytes:
    """A fixed-size digest (BLAKE2b, 16 bytes) of `version` and `key`: equal for equal keys,
    whatever order a set's items were added in."""
    hasher = hashlib.blake2b(digest_size=DIGEST_BYTES)
    _feed(hasher, (version, key))
    return hasher.digest()


def _feed(hasher: hashlib.blake2b, value: object) -> None:
    """Write `value` into `hasher` unambiguously: a type tag and, for text and containers, a
    length before the contents, so that ("ab", "c") and ("a", "bc") differ."""
    if value is None or isinstance(value, bool):
        hasher.update(b"%r;" % value)
    elif isinstance(value, int | float):
        hasher.update(b"%c%r;" % (b"i" if isinstance(value, int) else b"f", value))
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")  # JSON may carry a lone surrogate
        hasher.update(b"s%d:" % len(data))
        hasher.update(data)
    elif isinstance(value, tuple | list):
        hasher.update(b"t%d:" % len(value))
        for item in value:
            _feed(hasher, item)
    elif isinstance(value, frozenset | set):
        hasher.update(b"e%d:" % len(value))
        for item_digest in sorted(key_digest(None, item) for item in value):
            hasher.update(item_digest)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        hasher.update(b"d" + type(value).__qualname__.encode() + b":")
        for field in dataclasses.fields(value):
            _feed(hasher, getattr(value, field.name))
    else:
        raise TypeError(f"a search cache key cannot hold {type(value).__name__}")


def result_bytes(result: SearchResult) -> int:
    """An estimate of the memory a cached `result` holds of its own. Its passages' chunks and
    articles are the served index's (shared, not counted); the question, the answer and the
    passages' own objects are counted."""
    size = ENTRY_BYTES + _object_bytes(result) + sys.getsizeof(result.question) + sys.getsizeof(result.passages)
    size += sum(_passage_bytes(passage) for passage in result.passages)
    if result.answer is not None:
        size += _object_bytes(result.answer) + sys.getsizeof(result.answer.text)
    return size


def _passage_bytes(passage: Passage) -> int:
    # The object, its two floats and its highlight (whose two ints are small, and shared).
    return _object_bytes(passage) + 2 * sys.getsizeof(passage.score) + _object_bytes(passage.highlight)


def _object_bytes(obj: object) -> int:
    """An object with its attribute dict, when it has one."""
    return sys.getsizeof(obj) + (sys.getsizeof(vars(obj)) if hasattr(obj, "__dict__") else 0)
