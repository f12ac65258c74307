"""Probes for pause at real-time pacing and for stop() with a consumer that hangs.

Both use the real wall clock (these are what a user sees), at speed 60 so one
backtest minute is one wall second and the probe takes a few seconds:

- pause while the coordinator waits for a step: nothing may be delivered and the
  clock may not move, for longer than the step; after resume the step comes after
  the rest of its wait (not the whole wait, not at once), at its own minute;
- stop() while a consumer callback blocks: stop() returns within its budget and
  names the coordinator thread in its report; the upkeep thread is joined; once the
  callback returns, the coordinator ends by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from sessionflow.check.faults import FaultResult
from sessionflow.events import BarSliceEvent, BatchEvent, SessionStartEvent
from sessionflow.system_manager import Settings, build_system

SPEED = 60.0  # one backtest minute per wall second
PAUSE_AFTER_S = 0.25  # into the first step's 1 s wait
PAUSED_FOR_S = 1.5  # longer than the step: the old code delivered it during the pause
TOLERANCE_S = 0.15
BLOCKED_STOP_BUDGET_S = 0.5


def pause_mid_wait(store_path: Path, symbols: Sequence[str], day: date) -> FaultResult:
    """Pause 0.25 s into a 1 s paced wait, hold 1.5 s, resume; when does the step come?"""
    settings = Settings.load(
        store_path=store_path, symbols=list(symbols), start=day, end=day, speed=SPEED
    )
    system = build_system(settings)
    clock = system.data_manager.clock
    seen: list[tuple[float, datetime]] = []
    started, first_bars = threading.Event(), threading.Event()

    def consumer(ev: BatchEvent) -> None:
        if isinstance(ev, SessionStartEvent) and not started.is_set():
            seen.append((time.monotonic(), clock.now()))
            started.set()
        elif isinstance(ev, BarSliceEvent) and not first_bars.is_set():
            seen.append((time.monotonic(), clock.now()))
            first_bars.set()

    system.on_batch(consumer)
    system.start()
    try:
        if not started.wait(30):
            return FaultResult("pause during a paced wait", 1, False, "no session start in 30 s")
        t_start, sim_start = seen[0]
        time.sleep(max(0.0, t_start + PAUSE_AFTER_S - time.monotonic()))  # into the wait
        system.pause()
        t_pause = time.monotonic()
        frozen = clock.now()
        delivered_while_paused = first_bars.wait(PAUSED_FOR_S)
        moved = clock.now() != frozen
        t_resume = time.monotonic()
        system.resume()
        arrived = first_bars.wait(10)
    finally:
        system.stop()
    if delivered_while_paused or not arrived:
        detail = "step delivered while paused" if delivered_while_paused else "no step after resume"
        return FaultResult("pause during a paced wait", 1, False, detail)
    t_bar, sim_bar = seen[1]
    planned = 60 / SPEED - (t_pause - t_start)
    took = t_bar - t_resume
    on_time = abs(took - planned) < TOLERANCE_S
    ok = not moved and on_time and sim_bar == sim_start + timedelta(minutes=1)
    detail = (
        f"speed {SPEED:g}: paused {t_pause - t_start:.2f}s into a 1s step for "
        f"{t_resume - t_pause:.2f}s: 0 events, clock {'MOVED' if moved else 'unchanged'}; "
        f"after resume the step came in {took:.2f}s (rest of the wait {planned:.2f}s) "
        f"at {sim_bar:%H:%M:%S}Z, {(sim_bar - sim_start).seconds}s of backtest time after "
        "the start"
    )
    return FaultResult("pause during a paced wait", 1, ok, detail)


def stop_with_blocked_consumer(store_path: Path, symbols: Sequence[str], day: date) -> FaultResult:
    """A consumer callback blocks for up to 10 s; stop() must say it did not join."""
    settings = Settings.load(store_path=store_path, symbols=list(symbols), start=day, end=day)
    system = build_system(settings)
    inside, release = threading.Event(), threading.Event()

    def stuck(ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent):
            inside.set()
            release.wait(10)

    system.on_batch(stuck)
    system.start()
    try:
        if not inside.wait(30):
            return FaultResult("stop() with a blocked consumer", 1, False, "no bars in 30 s")
        report = system.stop(BLOCKED_STOP_BUDGET_S)
        upkeep_joined = not system.data_manager.upkeep.alive
    finally:
        release.set()
    t0 = time.monotonic()
    system.data_manager.coordinator.join(10)
    ended = time.monotonic() - t0
    coordinator_ended = not system.data_manager.coordinator.alive
    ok = (
        report.unjoined == ("sessionflow-coordinator",)
        and report.elapsed_s < BLOCKED_STOP_BUDGET_S + TOLERANCE_S
        and upkeep_joined
        and coordinator_ended
    )
    named = ", ".join(report.unjoined) or "nothing"
    detail = (
        f"stop({BLOCKED_STOP_BUDGET_S:g}) returned in {report.elapsed_s:.2f}s naming {named}; "
        f"upkeep {'joined' if upkeep_joined else 'ALIVE'}; "
        f"coordinator {'ended' if coordinator_ended else 'ALIVE'} {ended:.2f}s after the callback "
        "returned"
    )
    return FaultResult("stop() with a blocked consumer", 1, ok, detail)
