"""The best of many candidates whose statistics change a few at a time, without re-ranking them all
(the agents' incumbent and screens; the session's confirmed best, enpire.track.confidence).

An agent asks for its incumbent (and the search agent for its best shaped candidate, the sequential
screen for its most plausible one) on every proposal; ranking every known candidate each time made a
long session quadratic. A Ranking keeps a heap of (score, first-seen order) entries and drops stale
ones lazily: `note(key, score)` after a candidate's statistics change (None: not eligible), `best()`
the key `max()` over the current scores would return (ties: the candidate seen first, as `max` over
an insertion-ordered dict does).
"""

from __future__ import annotations

import heapq
from typing import Any


class _Entry:
    __slots__ = ("key", "order", "score", "version")

    def __init__(self, score: tuple[Any, ...], order: int, version: int, key: str) -> None:
        self.score, self.order, self.version, self.key = score, order, version, key

    def __lt__(self, other: _Entry) -> bool:  # heapq pops the smallest: the best candidate is "smallest"
        return self.score > other.score or (self.score == other.score and self.order < other.order)


class Ranking:
    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._version: dict[str, int] = {}
        self._live: dict[str, bool] = {}

    def note(self, key: str, score: tuple[Any, ...] | None, order: int) -> None:
        version = self._version.get(key, 0) + 1
        self._version[key] = version
        self._live[key] = score is not None
        if score is not None:
            heapq.heappush(self._heap, _Entry(score, order, version, key))

    def best(self, skip: set[str] | frozenset[str] = frozenset()) -> str | None:
        """The best current key not in `skip` (skipped ones stay ranked)."""
        heap = self._heap
        while heap and (heap[0].version != self._version.get(heap[0].key) or not self._live.get(heap[0].key)):
            heapq.heappop(heap)  # stale: its candidate changed since, or is no longer eligible
        if not skip:
            return heap[0].key if heap else None
        held: list[_Entry] = []
        found = None
        while heap:
            top = heapq.heappop(heap)
            if top.version != self._version.get(top.key) or not self._live.get(top.key):
                continue
            held.append(top)
            if top.key not in skip:
                found = top.key
                break
        for entry in held:
            heapq.heappush(heap, entry)
        return found
