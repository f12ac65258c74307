"""Faults: SIGKILL mid-import and mid-backtest, a failing fill source, a raising consumer, stop().

The crash tests run a real child process (``sessionflow.check.child``) that prints a
line at the point of interest; the parent kills it there with SIGKILL and then
inspects the DuckDB file it left behind.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from sessionflow import BarEvent, Event, SessionEndEvent, State, SystemManager, build_system
from sessionflow.check import faults
from sessionflow.check.stores import (
    CHECK_END,
    CHECK_START,
    CHECK_SYMBOLS,
    FaultyStore,
    build_check_store,
    drop_mask,
    store_checksum,
)
from sessionflow.demo import synthetic_bars
from sessionflow.importer import import_bars
from sessionflow.store import DuckDBStore
from sessionflow.stream_coordinator.publisher import ConsumerError
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings

SYMS = list(CHECK_SYMBOLS)
SELF_STOP_BUDGET_S = 60.0  # far above the real cost even at a load of 30 on 2 cores


@pytest.fixture
def check_store(tmp_path: Path, calendar: ExchangeCalendar) -> Path:
    path = tmp_path / "check.duckdb"
    build_check_store(path, calendar).close()
    return path


def test_kill_9_inside_the_import_merge_leaves_none_of_the_file_and_reimport_is_idempotent(
    check_store: Path, tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    bars = synthetic_bars(calendar, ["KILL"], date(2024, 1, 2), date(2024, 2, 9))
    csv = tmp_path / "big.csv"
    rows = faults.write_bar_csv(csv, bars)
    store = DuckDBStore(check_store)
    before, before_rows = store_checksum(store), store.count_bars()
    store.close()

    seen = faults.run_child_until(["import", str(check_store), str(csv), "KILL"], "merging")

    assert seen == ["merging"]  # killed inside the transaction, before "done"
    store = DuckDBStore(check_store)  # opens (and replays its WAL) after the crash
    after_rows = store.count_bars()
    assert after_rows in (before_rows, before_rows + rows)  # never part of the file
    if after_rows == before_rows:
        assert store_checksum(store) == before
    first = import_bars(store, csv, calendar, "KILL")
    once = store_checksum(store)
    again = import_bars(store, csv, calendar, "KILL")
    assert store_checksum(store) == once
    assert first.imported == again.imported == rows == len(bars) > 10_000
    assert store.count_bars() == before_rows + rows
    span = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    loaded = store.load_bars(["KILL"], *span)
    assert np.array_equal(loaded.ts_us, bars.ts_us) and np.array_equal(loaded.close, bars.close)
    store.close()


def test_kill_9_mid_backtest_leaves_the_store_as_it_was(check_store: Path) -> None:
    result = faults.kill_mid_backtest(check_store, SYMS, CHECK_START, CHECK_END, at_session=2)
    assert result.survived, result.detail
    assert "SIGKILL at session 2024-11-29" in result.detail


def _run_faulty(
    path: Path, store: FaultyStore, **over: object
) -> tuple[SystemManager, list[Event]]:
    settings = demo_settings(
        path, symbols=SYMS, start=CHECK_START, end=CHECK_END, checks_on_upkeep_thread=True, **over
    )
    system = build_system(settings, store=store)
    events: list[Event] = []
    system.on_event(events.append)
    system.run()
    return system, events


@pytest.mark.parametrize(("fail_first", "fail_every"), [(3, 0), (0, 2)])
def test_fill_source_errors_are_counted_retried_and_nothing_is_lost(
    check_store: Path, fail_first: int, fail_every: int
) -> None:
    """Replay drops bars; the fill source raises on some calls; retries recover every one."""
    clean = build_system(demo_settings(check_store, symbols=SYMS, start=CHECK_START, end=CHECK_END))
    clean.run()
    store = FaultyStore(check_store, drop_every=40, fail_first=fail_first, fail_every=fail_every)
    system, events = _run_faulty(check_store, store)
    upkeep = system.data_manager.upkeep
    assert store.find_failures > 0 and upkeep.fill_errors == store.find_failures
    assert upkeep.last_fill_error.startswith("FillSourceDown: fill source down (call ")
    filled = [e.bar for e in events if isinstance(e, BarEvent) and e.bar.filled]
    assert len(filled) == store.dropped > 50
    # every session completed with exactly the bars a loss-free replay has
    got = system.data_manager.reports
    want = clean.data_manager.reports
    assert [
        (r.session, [(x.symbol, x.bars, x.volume, x.high, x.low) for x in r.rows]) for r in got
    ] == [(r.session, [(x.symbol, x.bars, x.volume, x.high, x.low) for x in r.rows]) for r in want]
    store.close()


def test_fill_source_down_all_session_reports_every_dropped_bar_as_a_gap(
    check_store: Path,
) -> None:
    """Nothing can be recovered, so each lost minute must show up as a gap, not vanish."""
    store = FaultyStore(check_store, drop_every=40, fail_every=1)
    system, events = _run_faulty(check_store, store)
    upkeep = system.data_manager.upkeep
    assert upkeep.fill_errors == store.find_calls == store.find_failures > 0
    assert not any(isinstance(e, BarEvent) and e.bar.filled for e in events)
    truth = DuckDBStore(check_store, read_only=True)
    ends = [e for e in events if isinstance(e, SessionEndEvent)]
    assert [e.session for e in ends] == [date(2024, 11, 27), date(2024, 11, 29), date(2024, 12, 2)]
    for end in ends:
        for row in end.report.rows:
            session = system.data_manager.calendar.session(end.session)
            stored = truth.load_bars([row.symbol], session.open, session.close)
            dropped = int(drop_mask(stored, 40).sum())
            assert row.bars == len(stored) - dropped
            assert row.gaps_found == row.expected - row.bars  # every missing minute reported
            assert row.gaps_filled == 0
    truth.close()
    store.close()


@pytest.mark.parametrize("on_upkeep_thread", [False, True])
def test_consumer_error_stops_the_system_without_deadlock(
    check_store: Path, on_upkeep_thread: bool
) -> None:
    result = faults.consumer_error(check_store, SYMS, CHECK_START, CHECK_END, on_upkeep_thread)
    assert result.survived, result.detail


def test_consumer_error_ends_an_async_consumer_instead_of_leaving_it_waiting(
    check_store: Path,
) -> None:
    """A callback fails while an async consumer iterates: the iterator ends, run is over."""
    import asyncio

    settings = demo_settings(check_store, symbols=SYMS, start=CHECK_START, end=CHECK_END)
    system = build_system(settings)
    calls = {"n": 0}

    def strategy(ev: Event) -> None:
        calls["n"] += 1
        if calls["n"] == 2_000:
            raise KeyError("position")

    system.on_event(strategy)

    async def consume() -> int:
        seen = 0
        async for _ in system.events():
            seen += 1
        return seen

    seen = asyncio.run(asyncio.wait_for(consume(), timeout=30))
    system.stop()
    assert isinstance(system.error, ConsumerError) and "position" in str(system.error)
    assert 0 < seen < calls["n"] == 2_000  # batches before the failing one, then the end
    assert system.state is State.STOPPED
    assert not system.data_manager.coordinator.alive and not system.data_manager.upkeep.alive


def test_stop_from_every_state_returns_within_two_seconds_and_joins_both_workers(
    check_store: Path,
) -> None:
    timings = faults.stop_timings(check_store, SYMS, CHECK_START, CHECK_END)
    assert [t.state for t in timings] == [
        "before start",
        "running",
        "paused",
        "after finish",
        "from a callback",
    ]
    for t in timings:
        assert t.ok, t
    assert max(t.seconds for t in timings) < faults.STOP_BUDGET_S


def test_stop_called_inside_a_callback_ends_the_run_cleanly(check_store: Path) -> None:
    """A strategy that decides to stop: no 'cannot join current thread', no error, no more bars."""
    settings = demo_settings(check_store, symbols=SYMS, start=CHECK_START, end=CHECK_END)
    system = build_system(settings)
    bars_after_stop: list[Event] = []
    stopped = threading.Event()

    def strategy(ev: Event) -> None:
        if stopped.is_set():
            bars_after_stop.append(ev)
        elif isinstance(ev, BarEvent) and ev.bar.ts.minute == 45:
            report = system.stop(timeout=SELF_STOP_BUDGET_S)
            # waiting for its own thread would run most of the budget out, then be unjoined
            assert report.joined and report.elapsed_s < SELF_STOP_BUDGET_S / 2
            stopped.set()

    system.on_event(strategy)
    system.run()  # returns: no ConsumerError
    assert stopped.is_set() and system.error is None and system.state is State.STOPPED
    assert not system.data_manager.coordinator.alive and not system.data_manager.upkeep.alive
    # the instant being published finishes (other symbols' bars of that minute), nothing after
    assert {e.time for e in bars_after_stop} <= {e.time for e in bars_after_stop[:1]}
    assert system.data_manager.reports == []


def test_pause_during_a_paced_wait_holds_the_step_and_resume_waits_only_the_rest(
    check_store: Path,
) -> None:
    from sessionflow.check.pause_stop import pause_mid_wait

    result = pause_mid_wait(check_store, SYMS, CHECK_START)
    assert result.survived, result.detail
    assert "0 events, clock unchanged" in result.detail


def test_stop_with_a_blocked_consumer_names_the_coordinator(check_store: Path) -> None:
    from sessionflow.check.pause_stop import stop_with_blocked_consumer

    result = stop_with_blocked_consumer(check_store, SYMS, CHECK_START)
    assert result.survived, result.detail
    assert "naming sessionflow-coordinator; upkeep joined" in result.detail
