"""Concurrency stress: jitter in both threads, checks on the upkeep thread, a lossy replay and a
flaky fill source, with invariants checked after every batch and in snapshots from a third thread.

``SESSIONFLOW_STRESS_RUNS`` sets the number of full backtests (default 3, each four sessions
with the holiday and the early close); the number run is recorded as the test property
``stress_iterations``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionflow import build_system
from sessionflow.check.stores import (
    CHECK_END,
    CHECK_START,
    CHECK_SYMBOLS,
    FaultyStore,
    build_check_store,
)
from sessionflow.check.stress import (
    InvariantMonitor,
    Violations,
    check_snapshot,
    run_stress,
)
from sessionflow.events import BarSliceEvent, DerivedSliceEvent
from sessionflow.models import to_us
from sessionflow.session_data import SymbolSnapshot
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings

MIN_US = 60_000_000
Finished = tuple[dict[str, SymbolSnapshot], ExchangeCalendar]
RUNS = int(os.environ.get("SESSIONFLOW_STRESS_RUNS", "3"))
SYMS = list(CHECK_SYMBOLS)


@pytest.fixture(scope="module")
def check_store(tmp_path_factory: pytest.TempPathFactory, calendar: ExchangeCalendar) -> Path:
    path = tmp_path_factory.mktemp("stress") / "check.duckdb"
    build_check_store(path, calendar).close()
    return path


def test_invariants_hold_under_jittered_cross_thread_scheduling(
    check_store: Path, record_property: Callable[[str, object], None]
) -> None:
    result = run_stress(check_store, SYMS, CHECK_START, CHECK_END, RUNS, seed=7)
    record_property("stress_iterations", result.iterations)
    record_property("stress_snapshots", result.snapshots)
    assert result.violation_count == 0, result.violations
    assert result.iterations == RUNS and result.sessions == 3 * RUNS
    # the run really exercised what the invariants are about
    assert result.snapshots >= 10 * RUNS
    assert result.filled > 0 and result.revised > 0 and result.fill_errors > 0
    assert result.derived > 0 and result.bars > 0


@pytest.fixture(scope="module")
def finished(check_store: Path) -> Finished:
    system = build_system(demo_settings(check_store, symbols=SYMS, start=CHECK_END, end=CHECK_END))
    system.run()
    return system.data_manager.session_data.snapshots(), system.calendar


def test_check_snapshot_accepts_a_real_snapshot(finished: Finished) -> None:
    snaps, calendar = finished
    for snap in snaps.values():
        assert check_snapshot(snap, calendar.session(snap.session)) == []


@pytest.mark.parametrize(
    ("tear", "message"),
    [
        (lambda s: {"session_volume": s.session_volume + 1}, "volume"),
        (lambda s: {"session_high": s.session_high + 0.01}, "high/low"),
        (lambda s: {"bar_quality": 99.0}, "quality"),
        (lambda s: {"expected_so_far": s.expected_so_far - 1}, "quality"),
        (lambda s: {"bars_1m": s.bars_1m[:-1]}, "volume"),
        (lambda s: {"gaps": ((10**18, 10**18 + MIN_US),)}, "beyond expected_so_far"),
        (
            lambda s: {"gaps": ((to_us(s.bars_1m[0].ts), to_us(s.bars_1m[0].ts) + MIN_US),)},
            "overlaps",
        ),
        (
            lambda s: {
                "bars_derived": {
                    5: (s.bars_derived[5][0]._replace(volume=1),),
                    15: s.bars_derived[15],
                }
            },
            "5m bar",
        ),
    ],
)
def test_check_snapshot_flags_a_torn_snapshot(
    finished: Finished, tear: Callable[[SymbolSnapshot], dict[str, Any]], message: str
) -> None:
    snaps, calendar = finished
    snap = snaps["BBB"]
    torn = dataclasses.replace(snap, **tear(snap))
    problems = check_snapshot(torn, calendar.session(snap.session))
    assert any(message in p for p in problems), problems


def test_monitor_flags_lost_duplicated_and_wrong_derived_bars(check_store: Path) -> None:
    """With the fill source down a lossy replay loses bars for good; the monitor must say so."""
    store = FaultyStore(check_store, drop_every=40, fail_every=1)
    truth = DuckDBStore(check_store, read_only=True)
    settings = demo_settings(check_store, symbols=SYMS, start=CHECK_END, end=CHECK_END)
    system = build_system(settings, store=store)
    violations = Violations()
    monitor = InvariantMonitor(system, truth, violations)
    replayed: list[BarSliceEvent] = []
    derived: list[DerivedSliceEvent] = []

    def tap(ev: object) -> None:
        if isinstance(ev, BarSliceEvent) and not replayed:
            replayed.append(ev)
        if isinstance(ev, DerivedSliceEvent) and not derived:
            derived.append(ev)
            monitor.on_batch(replayed[0])  # the same bars a second time
            bars = ev.bars
            monitor.on_batch(
                DerivedSliceEvent(
                    dataclasses.replace(bars, volume=bars.volume + 1),
                    ev.time + timedelta(0),
                    ev.interval,
                    ev.minutes,
                )
            )

    system.on_batch(monitor.on_batch)
    system.on_batch(tap)
    system.run()
    truth.close()
    store.close()
    text = "\n".join(violations.kept)
    assert "delivered twice" in text
    assert "but its 1m bars give" in text
    assert "stored bars never delivered" in text
    assert violations.count >= 3
