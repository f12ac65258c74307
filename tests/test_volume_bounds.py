"""Per-bar volume is bounded (MAX_VOLUME) so session and derived volume sums never wrap.

Bars reach session_data through three doors: the replay fast path (write_instant),
the columnar path (write_bars: fallback, fills) and bar objects (add_bars: live).
Each refuses a volume above the bound as ``volume_out_of_range``.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import numpy as np

from sessionflow import Bar, DerivedBarEvent
from sessionflow.demo import synthetic_bars
from sessionflow.models import MAX_VOLUME, from_us
from sessionflow.session_data import SessionData
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings, run_collect

DAY = date(2024, 11, 27)  # a full 390-minute session


def _store(tmp_path: Path, batch: BarBatch) -> DuckDBStore:
    store = DuckDBStore(tmp_path / "v.duckdb")
    store.upsert_bars(batch)
    return store


def _run(tmp_path: Path, store: DuckDBStore, symbols: list[str]) -> tuple[object, list[object]]:
    settings = demo_settings(tmp_path / "v.duckdb", symbols=symbols, start=DAY, end=DAY)
    return run_collect(settings, store=store)


def test_a_session_at_max_volume_sums_exactly(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    full = synthetic_bars(calendar, ["BIG", "HUGE"], DAY, DAY)
    batch = dataclasses.replace(full, volume=np.full(len(full), MAX_VOLUME, dtype=np.int64))
    system, events = _run(tmp_path, _store(tmp_path, batch), ["BIG", "HUGE"])
    report = system.data_manager.reports[0]  # type: ignore[attr-defined]
    for row in report.rows:
        assert row.bars == 390
        assert row.volume == 390 * MAX_VOLUME  # the exact Python integer sum
    derived = [e.bar for e in events if isinstance(e, DerivedBarEvent)]
    for k in (5, 15):
        bars = [b for b in derived if b.minutes == k]
        assert len(bars) == 2 * -(-390 // k)
        assert sum(b.volume for b in bars) == 2 * 390 * MAX_VOLUME
        assert {b.volume for b in bars} == {k * MAX_VOLUME}  # 390 divides by 5 and 15


def test_replayed_bars_over_max_volume_are_rejected(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    full = synthetic_bars(calendar, ["WRAP"], DAY, DAY)
    volume = np.full(len(full), 1000, dtype=np.int64)
    volume[[10, 11]] = 2**62  # two of these wrap an int64 sum to a negative number
    volume[20] = MAX_VOLUME + 1
    store = _store(tmp_path, dataclasses.replace(full, volume=volume))
    system, events = _run(tmp_path, store, ["WRAP"])
    row = system.data_manager.reports[0].rows[0]  # type: ignore[attr-defined]
    assert row.rejections == {"volume_out_of_range": 3}
    assert row.bars == 387
    assert row.volume == 387 * 1000
    fives = [e.bar for e in events if isinstance(e, DerivedBarEvent) and e.bar.minutes == 5]
    assert all(0 <= b.volume <= 5 * 1000 for b in fives)


def test_every_write_path_refuses_a_volume_over_the_bound(calendar: ExchangeCalendar) -> None:
    session = calendar.sessions(DAY, DAY)[0]
    data = SessionData(["A", "B"])
    data.start_session(session)
    ts = session.open_us + 60_000_000
    rows = np.array([0, 1], dtype=np.intp)
    price = np.array([10.0, 10.0])
    over = np.array([5, MAX_VOLUME + 1], dtype=np.int64)
    assert not data.write_instant(rows, ts, price, price, price, price, over)
    ok = data.write_bars(rows, np.array([ts, ts]), price, price, price, price, over)
    assert ok.tolist() == [True, False]
    negative = np.array([-1], dtype=np.int64)
    at = np.array([ts + 60_000_000])
    one = price[:1]
    assert not data.write_bars(rows[1:], at, one, one, one, one, negative)[0]
    bar = Bar("B", from_us(ts + 120_000_000), 10, 10, 10, 10, MAX_VOLUME + 1)
    assert data.add_bars([bar]) == []
    report = data.report()
    assert report.rows[0].volume == 5 and report.rows[0].rejections == {}
    assert report.rows[1].volume == 0
    assert report.rows[1].rejections == {"volume_out_of_range": 2, "negative_volume": 1}
