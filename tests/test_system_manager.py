"""Mode/state machine, pause/resume, speed, stop, consumer errors and the async iterator."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest

from sessionflow import BarEvent, Event, SessionEndEvent, State, build_system
from sessionflow.events import BarSliceEvent, BatchEvent
from sessionflow.models import SymbolError
from sessionflow.stream_coordinator.publisher import ConsumerError
from sessionflow.system_manager.manager import InvalidTransition, StopReport
from tests.helpers import FakeWall, ManualWall, demo_settings, run_collect

ONE_DAY = {"start": date(2024, 11, 29), "end": date(2024, 11, 29)}
MANAGER_LOG = "sessionflow.system_manager.manager"  # other loggers may warn meanwhile
STOP_BUDGET_S = 60.0  # far above what stop() costs even at a load of 30 on 2 cores
BLOCKED_S = 120.0


def test_invalid_transitions_are_refused(demo_store_path: Path) -> None:
    system = build_system(demo_settings(demo_store_path, **ONE_DAY))
    assert system.state is State.STOPPED
    with pytest.raises(InvalidTransition):
        system.pause()
    with pytest.raises(InvalidTransition):
        system.resume()
    system.run()
    assert system.state is State.STOPPED
    with pytest.raises(InvalidTransition, match="starts once"):
        system.start()


@pytest.mark.parametrize("speed", [1.0, 60.0, 390.0])
def test_speed_paces_backtest_minutes_against_wall_time(
    demo_store_path: Path, speed: float
) -> None:
    wall = FakeWall()
    run_collect(demo_settings(demo_store_path, speed=speed, **ONE_DAY), wall=wall)
    session_seconds = 210 * 60
    assert wall.t == pytest.approx(session_seconds / speed, rel=1e-9)
    assert max(wall.waits) == pytest.approx(60 / speed, rel=1e-9)


def test_speed_zero_never_waits(demo_store_path: Path) -> None:
    wall = FakeWall()
    run_collect(demo_settings(demo_store_path, speed=0, **ONE_DAY), wall=wall)
    assert wall.waits == []


def test_pause_freezes_backtest_time_and_resume_continues(demo_store_path: Path) -> None:
    system = build_system(demo_settings(demo_store_path, **ONE_DAY))
    paused_at = threading.Event()
    moved_while_paused = threading.Event()
    count = {"n": 0, "at_pause": -1}

    def on_event(ev: Event) -> None:
        count["n"] += 1
        if count["at_pause"] >= 0 and system.state is State.PAUSED:
            moved_while_paused.set()
        if (
            isinstance(ev, BarEvent)
            and ev.bar.symbol == "SPY"
            and ev.bar.ts.minute == 45
            and count["at_pause"] < 0
        ):
            system.pause()
            count["at_pause"] = count["n"]
            paused_at.set()

    system.on_event(on_event)
    system.start()
    assert paused_at.wait(10)
    frozen = system.data_manager.clock.now()
    assert not moved_while_paused.wait(0.3)
    assert system.data_manager.clock.now() == frozen
    assert system.state is State.PAUSED
    system.resume()
    assert system.wait(30)
    system.stop()
    assert system.error is None
    assert system.data_manager.clock.now() > frozen
    assert system.data_manager.reports[0].rows[0].expected == 210


def test_pause_during_a_paced_wait_at_speed_1_delivers_nothing_and_freezes_time(
    demo_store_path: Path,
) -> None:
    wall = ManualWall()
    system = build_system(demo_settings(demo_store_path, speed=1.0, **ONE_DAY), wall=wall)
    clock = system.data_manager.clock
    delivered: list[tuple[BatchEvent, object, float]] = []
    arrived = threading.Event()

    def on_batch(ev: BatchEvent) -> None:
        delivered.append((ev, clock.now(), wall.monotonic()))
        arrived.set()

    system.on_batch(on_batch)
    system.start()
    try:
        assert wall.request(1, 10) == 60  # pacing sleeps a whole minute for the 09:31 step
        before = len(delivered)  # the session start only
        wall.advance(30)
        system.pause()
        frozen = clock.now()
        arrived.clear()
        wall.advance(3600)  # an hour of wall time passes while paused
        assert not arrived.wait(0.5)
        assert len(delivered) == before
        assert clock.now() == frozen
        assert system.state is State.PAUSED
        system.resume()
        # re-planned from the simulated time reached (09:30:30): half a minute to go
        assert wall.request(2, 10) == pytest.approx(30)
        wall.advance(30)
        assert arrived.wait(10)
        ev, now, at = delivered[before]
        assert isinstance(ev, BarSliceEvent)
        assert now == frozen + timedelta(minutes=1)  # 09:31, not an hour later
        assert at == pytest.approx(3660)
        wall.auto = True
        assert system.wait(30)
    finally:
        wall.auto = True
        system.stop()
    assert system.error is None
    # every wall second not spent paused is one simulated second: 210 minutes in total
    assert wall.t == pytest.approx(3600 + 210 * 60)


def test_stop_returns_quickly_from_running_and_paused(demo_store_path: Path) -> None:
    for pause_first in (False, True):
        system = build_system(demo_settings(demo_store_path, speed=1.0))  # real time: hours
        started = threading.Event()
        system.on_event(lambda ev, started=started: started.set())  # type: ignore[misc]
        system.start()
        assert started.wait(60)
        if pause_first:
            system.pause()
        # The run would last hours: joined within the budget means stop() woke the clock
        # wait. A budget far above the real cost keeps this true on a loaded machine
        # (load 30 on 2 cores); speed is in benchmarks/, not here.
        report = system.stop(timeout=STOP_BUDGET_S)
        assert report.joined and report.unjoined == ()
        assert report.elapsed_s < STOP_BUDGET_S / 2  # did not run the budget out
        assert system.state is State.STOPPED
        assert not system.data_manager.coordinator.alive
        assert not system.data_manager.upkeep.alive


def test_stop_names_the_thread_a_blocked_consumer_keeps_alive(
    demo_store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    system = build_system(demo_settings(demo_store_path, **ONE_DAY))
    inside, release = threading.Event(), threading.Event()

    def stuck(ev: Event) -> None:
        if isinstance(ev, BarEvent):
            inside.set()
            release.wait(BLOCKED_S)  # a strategy blocked far longer than stop's budget

    system.on_event(stuck)
    system.start()
    try:
        assert inside.wait(60)
        with caplog.at_level(logging.WARNING, logger=MANAGER_LOG):
            report = system.stop(timeout=0.5)
        assert isinstance(report, StopReport)
        assert not report.joined
        assert report.unjoined == ("sessionflow-coordinator",)
        assert 0.4 <= report.elapsed_s < BLOCKED_S / 2  # waited its budget, not the callback
        assert not system.data_manager.upkeep.alive  # the upkeep thread got its share
        warnings = [r for r in caplog.records if r.name == MANAGER_LOG and r.levelname == "WARNING"]
        assert len(warnings) == 1 and "sessionflow-coordinator" in warnings[0].getMessage()
    finally:
        release.set()
    again = system.stop(timeout=10)  # once the callback returns, the thread ends
    assert again.joined and again.unjoined == ()
    assert not system.data_manager.coordinator.alive


def test_consumer_callback_error_stops_the_system_with_the_error(demo_store_path: Path) -> None:
    system = build_system(demo_settings(demo_store_path, **ONE_DAY))

    def bad(ev: Event) -> None:
        if isinstance(ev, BarEvent):
            raise RuntimeError("strategy bug")

    system.on_event(bad)
    with pytest.raises(ConsumerError, match="strategy bug"):
        system.run()
    assert system.state is State.STOPPED
    assert not system.data_manager.upkeep.alive


def test_timer_expires_when_data_ends_before_the_close(tmp_path: Path, calendar) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from sessionflow.demo import synthetic_bars
    from sessionflow.store import DuckDBStore

    day = date(2024, 11, 29)
    full = synthetic_bars(calendar, ["EARLY"], day, day)
    store = DuckDBStore(tmp_path / "e.duckdb")
    store.upsert_bars(full.take(np.arange(100)))
    wall = FakeWall()
    system, events = run_collect(
        demo_settings(tmp_path / "e.duckdb", symbols=["EARLY"], speed=1.0, **ONE_DAY),
        store=store,
        wall=wall,
    )
    end = next(e for e in events if isinstance(e, SessionEndEvent))
    assert end.timer_expired and system.stream_coordinator_timer_expired
    assert wall.t == pytest.approx(100 * 60)  # paced until the data ran out, not to the close
    assert end.report.rows[0].expected == 210 and end.report.rows[0].bars == 100


async def test_async_iterator_yields_every_event_in_order(demo_store_path: Path) -> None:
    _, expected = await asyncio.to_thread(run_collect, demo_settings(demo_store_path, **ONE_DAY))
    system = build_system(demo_settings(demo_store_path, **ONE_DAY))
    got = []
    async for ev in system.events():
        got.append(ev)
        if len(got) % 500 == 0:
            await asyncio.sleep(0)  # a consumer that yields control now and then
    system.stop()
    assert [repr(e) for e in got] == [repr(e) for e in expected]


def test_python_api_takes_symbols_in_any_case_and_refuses_bad_ones(
    demo_store_path: Path,
) -> None:
    system = build_system(demo_settings(demo_store_path, symbols=[" spy", "qqq"], **ONE_DAY))
    assert system.data_manager.session_data.symbols == ("QQQ", "SPY")
    system.run()
    dm = system.data_manager
    assert dm.bars(" spy ") == dm.bars("SPY") and len(dm.bars("SPY")) == 210
    assert dm.snapshot("qqq") == dm.snapshot("QQQ")
    assert dm.history("spy", 5, ONE_DAY["start"]) == dm.history("SPY", 5, ONE_DAY["start"])
    order = system.execution_manager.submit(" spy", "buy", 10)
    assert order.symbol == "SPY" and order.reason and "after_last_session" in order.reason
    with pytest.raises(SymbolError, match="symbol 'S PY' contains whitespace"):
        dm.bars("S PY")
    with pytest.raises(SymbolError, match="symbol '' is empty"):
        dm.bars("")
    with pytest.raises(KeyError, match="IBM"):
        dm.snapshot("ibm")
