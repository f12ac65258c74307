"""Where a per-bar slice's time goes: one 500-bar slice, cases alternated, process CPU time.

Issue 23, item 2. Each round runs every case (``--slices`` slices each); the table shows
the median over the rounds of CPU nanoseconds per bar. "before" is the per-bar path as
it was (``zip`` over the columns' lists, ``tuple.__new__`` for the Bar and then the
BarEvent, a Python loop calling the consumer), kept here only as the reference.

    python benchmarks/per_bar_split.py [--symbols 500] [--rounds 15] [--slices 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import numpy as np

from sessionflow.events import BarEvent, BarSliceEvent, BatchEvent, SessionEndEvent, bar_rows
from sessionflow.models import Bar, from_us
from sessionflow.store import BarBatch
from sessionflow.stream_coordinator.publisher import EventPublisher


def _noop(ev: Any) -> None:
    if type(ev) is SessionEndEvent:  # compare.py's no-op consumer
        return


def _before(ev: BarSliceEvent) -> Iterator[BarEvent]:
    """The per-bar events as built before the compiled builder (cb99866's events.py)."""
    b, n = ev.bars, len(ev.bars)
    rows = zip(
        b.symbol.tolist(),
        repeat(from_us(int(b.ts_us[0])), n),
        b.open.tolist(),
        b.high.tolist(),
        b.low.tolist(),
        b.close.tolist(),
        b.volume.tolist(),
        repeat(1, n),
        repeat(ev.filled, n),
        b.regular.tolist(),
        strict=True,
    )
    bars = map(tuple.__new__, repeat(Bar, n), rows)
    fields = zip(bars, repeat(ev.time, n), repeat(ev.corrected, n), strict=True)
    return map(tuple.__new__, repeat(BarEvent, n), fields)


def _before_publish(ev: BarSliceEvent, consume: Callable[[Any], None]) -> None:
    for one in _before(ev):
        try:
            consume(one)
        except Exception:
            raise


def _feed(ev: BatchEvent, consume: Callable[[Any], object]) -> None:
    rows = bar_rows(ev)
    assert rows is not None
    rows.feed(consume)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--slices", type=int, default=200)
    opts = parser.parse_args()
    n, rng = opts.symbols, np.random.default_rng(0)
    batch = BarBatch(
        symbol=np.array([f"S{i:04d}" for i in range(n)], dtype=object),
        ts_us=np.full(n, 1_732_545_000_000_000, np.int64),
        open=rng.uniform(10, 11, n),
        high=rng.uniform(11, 12, n),
        low=rng.uniform(9, 10, n),
        close=rng.uniform(10, 11, n),
        volume=rng.integers(1000, 10**6, n),
    )
    ev = BarSliceEvent(batch, datetime(2024, 11, 25, 14, 31, tzinfo=UTC), rows=np.arange(n))
    publisher = EventPublisher(threading.Event())
    publisher.add_callback(_noop)
    kept: list[Any] = []
    cases: dict[str, Callable[[], object]] = {
        "before: zip + tuple.__new__, Python loop, no-op consumer": lambda: _before_publish(
            ev, _noop
        ),
        "after: publish to the no-op consumer (the per-bar path)": lambda: publisher.publish([ev]),
        "after: building in the C loop, a C callback (id)": lambda: _feed(ev, id),
        "a Python loop calling the no-op consumer (the call alone)": lambda: [
            _noop(ev) for _ in range(n)
        ],
        "making the iterator (tolist, views)": lambda: bar_rows(ev),
        "after, a consumer that keeps every event": lambda: (
            _feed(ev, kept.append),
            kept.clear(),
        ),
        "before, the same keeping consumer": lambda: (
            _before_publish(ev, kept.append),
            kept.clear(),
        ),
    }
    took: dict[str, list[float]] = {name: [] for name in cases}
    load = os.getloadavg()[0]
    for _ in range(opts.rounds):
        for name, case in cases.items():
            t0 = time.process_time()
            for _ in range(opts.slices):
                case()
            took[name].append((time.process_time() - t0) / opts.slices / n * 1e9)
    print(f"load {load:.1f}; median CPU ns per bar over {opts.rounds} rounds")
    print("| case | ns/bar |\n|---|---:|")
    for name, values in took.items():
        print(f"| {name} | {statistics.median(values):.0f} |")


if __name__ == "__main__":
    main()
