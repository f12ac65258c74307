"""Chronological merge of per-stream queues with a deterministic tie order.

Items are ordered by (available_at, kind, symbol, arrival): bars before quotes
before ticks at the same instant, symbols alphabetically. The merger hands out
whole groups that share an ``available_at`` so the writer can take the lock once
per instant (and, later, process a group as one vectorised slice).
"""

from __future__ import annotations

import heapq
from collections import deque

from sessionflow.data_upkeep.prefetch import Item, SessionPayload, StreamKey
from sessionflow.models import to_us


class StreamMerger:
    """Per-stream FIFO queues merged through a min-heap of their heads."""

    def __init__(self) -> None:
        self._queues: dict[StreamKey, deque[tuple[int, Item]]] = {}
        self._heap: list[tuple[int, int, str, StreamKey]] = []

    def load(self, payload: SessionPayload) -> None:
        for key in sorted(payload.streams):
            for item in payload.streams[key]:
                self.put(key, item)

    def put(self, key: StreamKey, item: Item) -> None:
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = deque()
        t = to_us(item.available_at)
        if not q:
            heapq.heappush(self._heap, (t, key[0], key[1], key))
        q.append((t, item))

    def next_time(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def pop_group(self) -> tuple[int, list[Item]]:
        """All items available at the earliest instant, in tie order."""
        t = self._heap[0][0]
        out: list[Item] = []
        heap = self._heap
        while heap and heap[0][0] == t:
            _, _, _, key = heapq.heappop(heap)
            q = self._queues[key]
            while q and q[0][0] == t:
                out.append(q.popleft()[1])
            if q:
                heapq.heappush(heap, (q[0][0], key[0], key[1], key))
        return t, out

    def clear(self) -> list[Item]:
        """Drop everything left, returning it so the caller can count it."""
        rest = [item for q in self._queues.values() for _, item in q]
        self._queues.clear()
        self._heap.clear()
        return rest
