"""Chronological merge of the session's streams with a deterministic tie order.

Streams: the columnar bar stream (all symbols, ordered by (available_at, symbol)
by the store's sort, which is the k-way merge of the per-symbol bar streams)
and per-symbol object queues (quotes, ticks, live items). Items are ordered by
(available_at, kind, symbol, arrival): bars before quotes before ticks at the
same instant, symbols alphabetically. The merger hands out whole instants, so
the writer takes the lock once per instant and processes bars as one slice.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sessionflow.data_upkeep.prefetch import Item, ReplayBars, SessionPayload, StreamKey
from sessionflow.models import to_us


@dataclass
class Instant:
    """Everything available at one instant: a slice of replay bars and/or objects."""

    time_us: int
    bars: ReplayBars | None = None
    lo: int = 0
    hi: int = 0
    group: int = -1  # which ReplayBars group the slice lo:hi is
    items: list[Item] = field(default_factory=list)

    def bar_index(self) -> npt.NDArray[np.intp]:
        return np.arange(self.lo, self.hi)


class StreamMerger:
    """The replay bar slices plus per-stream FIFO queues merged through a min-heap."""

    def __init__(self) -> None:
        self._queues: dict[StreamKey, deque[tuple[int, Item]]] = {}
        self._heap: list[tuple[int, int, str, StreamKey]] = []
        self._bars: ReplayBars | None = None
        self._group = 0
        self._times: list[int] = []  # each group's available time, as ints (read every step)

    def load(self, payload: SessionPayload) -> None:
        if payload.bars is not None and payload.bars.groups > 0:
            if self._bars is not None and self._group < self._bars.groups:
                raise RuntimeError("previous session's bars were not drained")
            self._bars, self._group = payload.bars, 0
            b = payload.bars
            self._times = b.available_us[b.starts[:-1]].tolist()
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

    def _bar_time(self) -> int | None:
        g, times = self._group, self._times
        return times[g] if g < len(times) else None

    def next_time(self) -> int | None:
        g, times = self._group, self._times
        bt = times[g] if g < len(times) else None
        if not self._heap:
            return bt
        ht = self._heap[0][0]
        return ht if bt is None else min(bt, ht)

    def __len__(self) -> int:
        n = sum(len(q) for q in self._queues.values())
        if self._bars is not None and self._group < self._bars.groups:
            n += len(self._bars) - int(self._bars.starts[self._group])
        return n

    def pop_group(self) -> Instant:
        """Everything available at the earliest instant, in tie order."""
        t = self.next_time()
        assert t is not None
        out = Instant(t)
        g = self._group
        if g < len(self._times) and self._times[g] == t:
            assert self._bars is not None
            out.bars = self._bars
            out.lo, out.hi = self._bars.bounds[g], self._bars.bounds[g + 1]
            out.group = g
            self._group = g + 1
        heap = self._heap
        while heap and heap[0][0] == t:
            _, _, _, key = heapq.heappop(heap)
            q = self._queues[key]
            while q and q[0][0] == t:
                out.items.append(q.popleft()[1])
            if q:
                heapq.heappush(heap, (q[0][0], key[0], key[1], key))
        return out
