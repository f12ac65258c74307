"""Live data written to the store in micro-batches, one upsert per batch, off the hot path.

Why: one insert per bar would be one DuckDB transaction per bar (thousands a
minute), and writing on the coordinator thread would add disk latency to every
event. Accepted bars and closed quote bars collect here; every ``max_items`` rows
or ``max_age_s`` seconds of clock time the batch becomes one job on the upkeep
thread (which already does the store I/O). A failed write keeps its rows for
the next batch (the store upserts, so a retry never duplicates).

On the way out (``flush_on_stop``: session end, stop() or an error) the rows
still waiting are written at once on the calling thread, and so are batches
handed to the upkeep thread that it has not started (cancelled there first):
consumers may already hold those bars, and stop() must not leave them unstored.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from sessionflow.models import Bar, Quote, Tick, to_us
from sessionflow.store import BarBatch, QuoteBatch, Store

log = logging.getLogger(__name__)

Submit = Callable[[Callable[[], Any]], "Future[Any]"]


def quote_batch(quotes: Sequence[Quote]) -> QuoteBatch:
    return QuoteBatch(
        symbol=np.array([q.symbol for q in quotes], dtype=object),
        ts_us=np.array([to_us(q.ts) for q in quotes], dtype=np.int64),
        bid=np.array(
            [(q.bid_open, q.bid_high, q.bid_low, q.bid_close) for q in quotes], dtype=np.float64
        ).reshape(-1, 4),
        bid_size=np.array([q.bid_size for q in quotes], dtype=np.int64),
        ask=np.array(
            [(q.ask_open, q.ask_high, q.ask_low, q.ask_close) for q in quotes], dtype=np.float64
        ).reshape(-1, 4),
        ask_size=np.array([q.ask_size for q in quotes], dtype=np.int64),
        regular=np.array([q.regular for q in quotes], dtype=np.bool_),
    )


class StoreBatcher:
    def __init__(self, store: Store, submit: Submit, max_items: int, max_age_s: float) -> None:
        self.store = store
        self._submit = submit
        self.max_items = max_items
        self.max_age = timedelta(seconds=max_age_s)
        self._bars: list[Bar] = []
        self._quotes: list[Quote] = []
        self._ticks: list[Tick] = []
        self._since: datetime | None = None
        self._last_now: datetime | None = None
        self._lock = threading.Lock()  # the retry path re-queues from the upkeep thread
        self._inflight: list[tuple[Future[Any], tuple[list[Bar], list[Quote], list[Tick]]]] = []
        self.batches = 0
        self.rows = 0
        self.errors = 0
        self.flushed_on_stop = 0

    def add(
        self,
        bars: Sequence[Bar],
        quotes: Sequence[Quote],
        now: datetime,
        ticks: Sequence[Tick] = (),
    ) -> None:
        if not bars and not quotes and not ticks:
            return
        with self._lock:
            self._last_now = now
            self._bars.extend(bars)
            self._quotes.extend(quotes)
            self._ticks.extend(ticks)
            if self._since is None:
                self._since = now
            full = len(self._bars) + len(self._quotes) + len(self._ticks) >= self.max_items
        if full:
            self.flush()

    def due_at(self) -> datetime | None:
        with self._lock:
            return None if self._since is None else self._since + self.max_age

    def maybe_flush(self, now: datetime) -> None:
        due = self.due_at()
        if due is not None and now >= due:
            self.flush()

    def flush(self) -> Future[Any] | None:
        """Hand the pending rows to the upkeep thread as one job; None if nothing is pending."""
        rows = self._take()
        if rows is None:
            return None
        fut = self._submit(lambda: self._write(*rows))
        with self._lock:
            self._inflight = [(f, r) for f, r in self._inflight if not f.done()]
            self._inflight.append((fut, rows))
        return fut

    def flush_on_stop(self, wait_s: float) -> int:
        """Write everything not yet stored, here and now; returns (and keeps) the row count.

        A batch the upkeep thread is writing gets up to ``wait_s`` seconds; one still
        queued there is cancelled and written here, as are the pending rows.
        """
        deadline = time.monotonic() + wait_s
        with self._lock:
            inflight, self._inflight = self._inflight, []
        for fut, (bars, quotes, ticks) in inflight:
            if fut.cancel():
                with self._lock:
                    self._bars[:0], self._quotes[:0], self._ticks[:0] = bars, quotes, ticks
            else:
                with contextlib.suppress(Exception):  # a failure re-queued its rows
                    fut.result(max(0.0, deadline - time.monotonic()))
        rows = self._take()
        if rows is not None:
            self.flushed_on_stop += self._write(*rows)
            log.info("live store: %d rows written on stop", self.flushed_on_stop)
        return self.flushed_on_stop

    def _take(self) -> tuple[list[Bar], list[Quote], list[Tick]] | None:
        with self._lock:
            bars, quotes, ticks = self._bars, self._quotes, self._ticks
            if not bars and not quotes and not ticks:
                return None
            self._bars, self._quotes, self._ticks, self._since = [], [], [], None
            self.batches += 1
        return bars, quotes, ticks

    def _write(self, bars: list[Bar], quotes: list[Quote], ticks: list[Tick]) -> int:
        # a correction may share a batch with the bar it replaces: the later one wins
        latest = list({(b.symbol, b.ts): b for b in bars}.values())
        try:
            n = self.store.upsert_bars(BarBatch.from_bars(latest)) if latest else 0
            n += self.store.upsert_quotes(quote_batch(quotes)) if quotes else 0
            n += self.store.upsert_ticks(ticks) if ticks else 0
        except Exception as exc:
            log.warning("live store write failed, kept for the next batch: %s", exc)
            with self._lock:
                self.errors += 1
                self._bars[:0], self._quotes[:0], self._ticks[:0] = bars, quotes, ticks
                if self._since is None:
                    self._since = self._last_now
            return 0
        with self._lock:
            self.rows += n
        return n
