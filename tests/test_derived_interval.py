"""Derived bar events say which series they belong to (issue 11): ``interval``, so a
consumer need not recover it from the bar's open and length, not even for a short
last window (8m on a 390- or 210-minute session)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sessionflow import DerivedBarEvent
from sessionflow.events import DerivedSliceEvent, expand
from tests.helpers import demo_settings, run_collect


def test_per_bar_derived_events_carry_their_interval(demo_store_path: Path) -> None:
    settings = demo_settings(
        demo_store_path,
        start=date(2024, 11, 27),
        end=date(2024, 11, 29),  # 11-29 closes at 13:00 ET: 210 minutes
        derived_intervals=[5, 8, 15],
    )
    _, events = run_collect(settings)
    seen: dict[int, int] = {}
    short = 0
    for ev in events:
        if not isinstance(ev, DerivedBarEvent):
            continue
        assert ev.interval in (5, 8, 15), ev
        assert ev.bar.minutes <= ev.interval
        if ev.bar.minutes < ev.interval:
            short += 1
            assert ev.interval == 8  # only 8 divides neither 390 nor 210
        seen[ev.interval] = seen.get(ev.interval, 0) + 1
    assert set(seen) == {5, 8, 15}
    assert short > 0


def test_expand_keeps_the_slice_interval() -> None:
    from datetime import UTC, datetime

    import numpy as np

    from sessionflow.store import BarBatch

    bars = BarBatch(
        symbol=np.array(["AAA", "BBB"], dtype=object),
        ts_us=np.array([1_732_545_000_000_000] * 2, dtype=np.int64),
        open=np.array([1.0, 2.0]),
        high=np.array([1.5, 2.5]),
        low=np.array([0.5, 1.5]),
        close=np.array([1.2, 2.2]),
        volume=np.array([10, 20], dtype=np.int64),
    )
    t = datetime(2024, 11, 25, 14, 36, tzinfo=UTC)
    out = expand([DerivedSliceEvent(bars, t, interval=8, minutes=6)])
    assert [(e.interval, e.bar.minutes, e.revised) for e in out] == [(8, 6, False)] * 2
