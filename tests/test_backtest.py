"""The demo backtest end to end: sessions, quality, history, gap filling, events."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from sessionflow import (
    BarEvent,
    DerivedBarEvent,
    Event,
    SessionEndEvent,
    SessionStartEvent,
    SystemManager,
)
from sessionflow.demo import DEMO_SYMBOLS, GAPPY, synthetic_bars
from sessionflow.models import to_us
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings, run_collect


@pytest.fixture(scope="module")
def demo_run(demo_store_path: Path) -> tuple[SystemManager, list[Event]]:
    return run_collect(demo_settings(demo_store_path))


def test_sessions_skip_the_holiday_and_know_the_early_close(demo_run) -> None:  # type: ignore[no-untyped-def]
    _, events = demo_run
    starts = [e.session for e in events if isinstance(e, SessionStartEvent)]
    assert date(2024, 11, 28) not in starts
    assert len(starts) == 11
    ends = {e.session: e.report for e in events if isinstance(e, SessionEndEvent)}
    friday = ends[date(2024, 11, 29)]
    assert friday.early_close
    assert {row.expected for row in friday.rows} == {210}
    assert {row.derived[5] for row in friday.rows} == {42}
    assert {row.derived[15] for row in friday.rows} == {14}


def test_quality_is_below_100_only_for_gappy_symbols(demo_run) -> None:  # type: ignore[no-untyped-def]
    system, _ = demo_run
    for report in system.data_manager.reports:
        for row in report.rows:
            assert row.quality == pytest.approx(100.0 * row.bars / row.expected, abs=1e-4)
            assert row.gaps_found == row.expected - row.bars
            if row.symbol not in GAPPY:
                assert row.quality == 100.0
    worst = {
        row.symbol: min(
            r.quality
            for rep in system.data_manager.reports
            for r in rep.rows
            if r.symbol == row.symbol
        )
        for row in system.data_manager.reports[0].rows
    }
    assert worst["NVDA"] < 99 and worst["QQQ"] < 100


def test_events_are_chronological_and_bars_arrive_when_their_minute_ends(demo_run) -> None:  # type: ignore[no-untyped-def]
    _, events = demo_run
    times = [e.time for e in events]
    assert times == sorted(times)
    for ev in events:
        if isinstance(ev, BarEvent):
            assert ev.time == ev.bar.ts + timedelta(minutes=1)
        if isinstance(ev, DerivedBarEvent):
            assert ev.time >= ev.bar.ts + timedelta(minutes=ev.bar.minutes)
    bars = [e.bar for e in events if isinstance(e, BarEvent)]
    assert len(bars) == len({(b.symbol, b.ts) for b in bars})


def test_session_volume_high_low_match_the_store(
    demo_run, demo_store_path: Path, calendar: ExchangeCalendar
) -> None:  # type: ignore[no-untyped-def]
    system, _ = demo_run
    store = DuckDBStore(demo_store_path, read_only=True)  # the run's store is open read-only
    for report in system.data_manager.reports:
        session = calendar.session(report.session)
        batch = store.load_bars(list(DEMO_SYMBOLS), session.open, session.close)
        for row in report.rows:
            mine = batch.symbol == row.symbol
            assert row.bars == int(mine.sum())
            assert row.volume == int(batch.volume[mine].sum())
            assert row.high == float(batch.high[mine].max())
            assert row.low == float(batch.low[mine].min())
    store.close()


def test_history_holds_trailing_trading_days(demo_run) -> None:  # type: ignore[no-untyped-def]
    system, _ = demo_run
    snap = system.data_manager.snapshot("AAPL")
    assert snap.session == date(2024, 12, 5)
    days = list(snap.historical_bars[1])
    assert days == [
        date(2024, 11, 27),
        date(2024, 11, 29),
        date(2024, 12, 2),
        date(2024, 12, 3),
        date(2024, 12, 4),
    ]
    assert len(snap.historical_bars[1][date(2024, 11, 29)]) == 210
    assert len(snap.historical_bars[5][date(2024, 11, 29)]) == 42


def test_first_session_history_is_loaded_from_the_store(demo_store_path: Path) -> None:
    system, _ = run_collect(
        demo_settings(
            demo_store_path, start=date(2024, 12, 2), end=date(2024, 12, 2), trailing_days=3
        )
    )
    snap = system.data_manager.snapshot("MSFT")
    assert list(snap.historical_bars[1]) == [
        date(2024, 11, 26),
        date(2024, 11, 27),
        date(2024, 11, 29),
    ]
    assert len(snap.historical_bars[5][date(2024, 11, 27)]) == 78


def test_gap_filling_raises_quality_when_bars_are_added_later(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    day = date(2024, 11, 29)
    session = calendar.session(day)
    full = synthetic_bars(calendar, ["GAP"], day, day)
    missing = {to_us(session.open) + 60_000_000 * m for m in (10, 11, 12, 100)}
    keep = ~np.isin(full.ts_us, list(missing))
    store = DuckDBStore(tmp_path / "g.duckdb")
    store.upsert_bars(full.take(keep))
    late = full.take(~keep)
    inserted = []

    def add_late_bars(system: SystemManager, ev: Event) -> None:
        # Runs on the coordinator thread at a deterministic backtest time: the
        # bars for 09:40-09:42 ET "arrive" in the store at 09:51 ET.
        if (
            isinstance(ev, BarEvent)
            and ev.bar.ts == session.open + timedelta(minutes=20)
            and not inserted
        ):
            store.upsert_bars(late.take(np.array([0, 1, 2])))
            inserted.append(ev.time)

    settings = demo_settings(
        tmp_path / "g.duckdb", symbols=["GAP"], start=day, end=day, max_fill_attempts=50
    )
    system, events = run_collect(settings, store=store, on_event=add_late_bars)
    row = system.data_manager.reports[0].rows[0]
    assert row.bars == 209 and row.gaps_filled == 3 and row.gaps_found == 4
    assert row.quality == pytest.approx(100 * 209 / 210, abs=1e-4)
    filled = [e for e in events if isinstance(e, BarEvent) and e.bar.filled]
    assert [e.bar.ts for e in filled] == sorted(
        late.iter_bars().__next__().ts + timedelta(minutes=i) for i in range(3)
    )
    # found by the upkeep check that runs right after the bars of that same instant
    assert all(e.time == inserted[0] for e in filled)
    revised = [e for e in events if isinstance(e, DerivedBarEvent) and e.revised]
    assert {(e.bar.minutes, e.bar.ts) for e in revised} == {
        (5, session.open + timedelta(minutes=10)),
        (15, session.open),
    }
    snap = system.data_manager.snapshot("GAP")
    five = {b.ts: b for b in snap.bars_derived[5]}
    window = [
        b
        for b in snap.bars_1m
        if session.open + timedelta(minutes=10) <= b.ts < session.open + timedelta(minutes=15)
    ]
    assert five[session.open + timedelta(minutes=10)].volume == sum(b.volume for b in window)
    assert snap.gaps == (
        (to_us(session.open) + 100 * 60_000_000, to_us(session.open) + 101 * 60_000_000),
    )


def test_quality_grows_with_expected_minutes_during_the_session(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    day = date(2024, 11, 29)
    store = DuckDBStore(tmp_path / "q.duckdb")
    store.upsert_bars(synthetic_bars(calendar, ["Q"], day, day, missing={"Q": 0.1}))
    seen: list[tuple[int, float]] = []

    def watch(system: SystemManager, ev: Event) -> None:
        if isinstance(ev, DerivedBarEvent) and ev.bar.minutes == 15:
            snap = system.data_manager.snapshot("Q")
            seen.append((snap.expected_so_far, snap.bar_quality))

    run_collect(
        demo_settings(tmp_path / "q.duckdb", symbols=["Q"], start=day, end=day),
        store=store,
        on_event=watch,
    )
    assert [e for e, _ in seen] == [15 * (i + 1) for i in range(14)]
    assert all(0 < q <= 100 for _, q in seen)


def test_unknown_symbol_and_empty_range_are_clear_errors(demo_store_path: Path) -> None:
    from sessionflow import build_system

    with pytest.raises(ValueError, match="symbols not in the store: NOPE"):
        build_system(demo_settings(demo_store_path, symbols=["AAPL", "NOPE"]))
    with pytest.raises(ValueError, match="no XNYS sessions between 2024-11-28 and 2024-11-28"):
        build_system(
            demo_settings(demo_store_path, start=date(2024, 11, 28), end=date(2024, 11, 28))
        )


def test_narrow_accessors_agree_with_the_snapshot(demo_run) -> None:  # type: ignore[no-untyped-def]
    system, _ = demo_run
    dm = system.data_manager
    snap = dm.snapshot("NVDA")
    assert dm.bars("NVDA") == snap.bars_1m
    assert dm.bars("NVDA", 15) == snap.bars_derived[15]
    assert dm.bars("NVDA", 7) == ()
    day = date(2024, 11, 29)
    assert dm.history("NVDA", 5, day) == snap.historical_bars[5][day]
    assert dm.history("NVDA", 5, date(2024, 11, 28)) == ()


def test_stored_ticks_replay_in_time_order_after_bars(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    from sessionflow import TickEvent
    from sessionflow.models import Tick

    day = date(2024, 11, 29)
    session = calendar.session(day)
    store = DuckDBStore(tmp_path / "t.duckdb")
    store.upsert_bars(synthetic_bars(calendar, ["T"], day, day))
    at = session.open + timedelta(minutes=1)  # the instant the 09:30 bar closes
    ticks = [
        Tick("T", at, 10.0, 5, 2),
        Tick("T", at, 10.0, 5, 1),
        Tick("T", at + timedelta(seconds=7), 9.9, 1, 1),
    ]
    store.upsert_ticks(ticks)
    system, events = run_collect(
        demo_settings(tmp_path / "t.duckdb", symbols=["T"], start=day, end=day), store=store
    )
    got = [e.tick for e in events if isinstance(e, TickEvent)]
    assert got == sorted(ticks, key=lambda t: (t.ts, t.seq))
    first_tick = next(i for i, e in enumerate(events) if isinstance(e, TickEvent))
    assert isinstance(events[first_tick - 1], BarEvent)  # bars before ticks at one instant
    assert system.data_manager.snapshot("T").ticks == tuple(got)
