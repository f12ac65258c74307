"""The compiled per-bar builder (``_bar_builder.BarRows``) and the publisher's C loop.

What a per-bar consumer sees must not depend on how the events are built: each event
is compared, field by field and type by type, with one built in Python from the same
columns (``Bar(...)`` and the event's constructor). The publisher's loop reuses an
event the consumer let go; one it kept (or whose bar it kept) must never change.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest

from sessionflow._bar_builder import BarRows
from sessionflow.events import (
    BarEvent,
    BarSliceEvent,
    BatchEvent,
    DerivedBarEvent,
    DerivedSliceEvent,
    Event,
    SessionStartEvent,
    expand,
    iter_expand,
)
from sessionflow.models import Bar, from_us
from sessionflow.store import BarBatch
from sessionflow.stream_coordinator.publisher import ConsumerError, EventPublisher

T = datetime(2024, 11, 25, 14, 31, tzinfo=UTC)
OPEN_US = 1_732_545_000_000_000


def _batch(n: int, seed: int, mixed: bool = False) -> BarBatch:
    """``n`` bars at one open (a replay slice), or at several opens (``mixed``)."""
    rng = np.random.default_rng(seed)
    ts = np.full(n, OPEN_US, np.int64)
    if mixed:
        ts += rng.integers(0, 4, n) * 60_000_000
    return BarBatch(
        symbol=np.array([f"S{i:03d}" for i in range(n)], dtype=object),
        ts_us=ts,
        open=rng.uniform(1, 100, n),
        high=rng.uniform(1, 100, n),
        low=rng.uniform(1, 100, n),
        close=rng.uniform(1, 100, n),
        volume=rng.integers(0, 10**13, n),
        regular=rng.random(n) < 0.7,
    )


def _python_bars(b: BarBatch, filled: bool = False, minutes: int = 1) -> list[Bar]:
    """The reference: each bar from its row through ``Bar(...)``, one value at a time."""
    return [
        Bar(
            symbol=b.symbol[i],
            ts=from_us(int(b.ts_us[i])),
            open=float(b.open[i]),
            high=float(b.high[i]),
            low=float(b.low[i]),
            close=float(b.close[i]),
            volume=int(b.volume[i]),
            minutes=minutes,
            filled=filled,
            regular=bool(b.regular[i]),
        )
        for i in range(len(b))
    ]


def _python_expand(events: list[BatchEvent]) -> list[Event]:
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, BarSliceEvent):
            bars = _python_bars(ev.bars, ev.filled)
            out += [BarEvent(bar, ev.time, ev.corrected) for bar in bars]
        elif isinstance(ev, DerivedSliceEvent):
            bars = _python_bars(ev.bars, minutes=ev.minutes)
            out += [DerivedBarEvent(bar, ev.time, ev.interval, ev.revised) for bar in bars]
        else:
            out.append(ev)
    return out


def _typed(x: Any) -> Any:
    """A value with the type of each field (recursively), so 1 and 1.0 or True differ."""
    if isinstance(x, tuple):
        return (type(x), tuple(_typed(f) for f in x))
    return (type(x), x)


def _events() -> list[BatchEvent]:
    events: list[BatchEvent] = [SessionStartEvent(T.date(), T, T, T)]
    for seed, n in enumerate((1, 7, 300)):
        one, mixed = _batch(n, seed), _batch(n, seed + 10, mixed=True)
        events += [
            BarSliceEvent(one, T),
            BarSliceEvent(mixed, T, filled=True, corrected=True),
            DerivedSliceEvent(one, T, 8, 6),
            DerivedSliceEvent(mixed, T, 15, 15, revised=True),
        ]
    events.append(BarSliceEvent(BarBatch.empty(), T))
    return events


def _published(consumer: Any, events: list[BatchEvent], callbacks: int = 1) -> None:
    publisher = EventPublisher(threading.Event())
    publisher.add_callback(consumer)
    for _ in range(callbacks - 1):
        publisher.add_callback(lambda ev: None)
    publisher.publish(events)


def test_built_events_equal_python_ones_field_by_field() -> None:
    """Also their hashes, taken as delivered: from Python 3.14 a tuple caches its hash,
    so an event rewritten in place must not keep the one of the bar before."""
    events = _events()
    python = _python_expand(events)
    want = [_typed(ev) for ev in python]
    assert [_typed(ev) for ev in iter_expand(events)] == want
    assert [_typed(ev) for ev in expand(events)] == want
    for callbacks in (1, 2):  # the C loop, and the expanded list two consumers share
        got: list[Any] = []
        _published(lambda ev, into=got: into.append((_typed(ev), hash(ev))), events, callbacks)
        assert got == [(typed, hash(ev)) for typed, ev in zip(want, python, strict=True)]


def test_bars_of_one_open_share_one_tz_aware_datetime() -> None:
    bars = list(_batch(50, 1).iter_bars())
    assert all(b.ts is bars[0].ts for b in bars)
    assert bars[0].ts == datetime(2024, 11, 25, 14, 30, tzinfo=UTC)
    mixed = list(_batch(50, 2, mixed=True).iter_bars())
    by_open = {b.ts: b.ts for b in mixed}
    assert len(by_open) > 1 and all(b.ts is by_open[b.ts] for b in mixed)


class _Keeper:
    """A consumer that keeps every third event, the bar of the next, a field of the next."""

    def __init__(self) -> None:
        self.kept: list[tuple[Any, Any]] = []
        self.calls = 0

    def __call__(self, ev: Any) -> None:
        self.calls += 1
        bar = ev if isinstance(ev, Bar) else getattr(ev, "bar", None)
        if bar is None:
            return
        k = self.calls % 3
        obj = ev if k == 0 else bar if k == 1 else bar.close
        self.kept.append((obj, repr(_typed(obj))))  # text: shares no object with obj

    def unchanged(self) -> bool:
        return [repr(_typed(obj)) for obj, _ in self.kept] == [seen for _, seen in self.kept]


def test_events_a_consumer_keeps_never_change() -> None:
    """The C loop writes the next bar into the event just delivered when nobody else
    holds it; whatever the consumer kept (the event, only its bar, only a field) must
    keep the values it had when delivered. Bars alone (``feed`` without an event type)
    likewise."""
    keeper = _Keeper()
    _published(keeper, _events())
    assert len(keeper.kept) > 900 and keeper.unchanged()
    bars = _Keeper()
    _batch(100, 5, mixed=True).iter_bars().feed(bars)
    assert len(bars.kept) == 100 and bars.unchanged()


def test_consumer_error_stops_the_slice_and_names_the_callback() -> None:
    events: list[BatchEvent] = [BarSliceEvent(_batch(10, 3), T)]
    seen: list[str] = []

    def consumer(ev: Any) -> None:
        seen.append(ev.bar.symbol)
        if len(seen) == 4:
            raise RuntimeError("strategy bug")

    with pytest.raises(ConsumerError, match="strategy bug") as info:
        _published(consumer, events)
    assert "consumer" in str(info.value) and isinstance(info.value.__cause__, RuntimeError)
    assert seen == ["S000", "S001", "S002", "S003"]


def test_builder_refuses_what_it_cannot_build() -> None:
    b = _batch(3, 4)
    cols = (b.open, b.high, b.low, b.close, b.volume, b.regular.view(np.uint8))
    sym = b.symbol.tolist()
    with pytest.raises(ValueError, match="different lengths"):
        BarRows(Bar, sym[:2], b.ts_us, from_us, *cols, 1, False)
    with pytest.raises(TypeError, match="10 fields"):
        BarRows(BarEvent, sym, b.ts_us, from_us, *cols, 1, False)
    with pytest.raises(TypeError, match="3 fields"):
        BarRows(Bar, sym, b.ts_us, from_us, *cols, 1, False, DerivedBarEvent, T, (False,))
    with pytest.raises(TypeError, match="not a tuple type"):
        BarRows(date, sym, b.ts_us, from_us, *cols, 1, False)
