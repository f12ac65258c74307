"""Thread 1: merge the session's streams, write to session_data, advance time, announce.

Per session: wait for upkeep to prepare it, emit SessionStart, then step through
backtest time. Each step is either the next group of items (written to
session_data, then published) or an upkeep check on the check-interval grid
(gap fills, derived bars, quality), whichever comes first; items at the same
instant as a check go first, so a 5-minute bar sees its fifth minute, and that
check then runs in the same step (one pace and clock move per minute), after the
items' events were delivered. The
session ends at the calendar close, after a final check; if the data runs out
earlier the coordinator waits ``end_of_data_timeout`` wall seconds, sets the
timer-expired flag and runs the remaining checks unpaced.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sessionflow.corporate_actions.adjust import AdjustmentError
from sessionflow.data_upkeep import CheckResult, SessionLoader, UpkeepWorker
from sessionflow.events import (
    BarSliceEvent,
    BatchEvent,
    DerivedSliceEvent,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
    TickEvent,
)
from sessionflow.models import Bar, Quote, Tick, from_us, to_us
from sessionflow.session_data import SessionData
from sessionflow.session_data.grid import MINUTE_US
from sessionflow.store import BarBatch
from sessionflow.stream_coordinator.merge import Instant, StreamMerger
from sessionflow.stream_coordinator.pacing import Pacer
from sessionflow.stream_coordinator.publisher import EventPublisher
from sessionflow.time_provider import BacktestClock, SessionInfo
from sessionflow.worker_thread import WorkerThread

log = logging.getLogger(__name__)
T = TypeVar("T")


class Stopped(Exception):
    """Raised inside the coordinator thread to unwind when stop() was called."""


def run_coordinator(
    name: str,
    body: Callable[[], None],
    publisher: EventPublisher,
    hooks: CoordinatorHooks,
    cleanup: Callable[[], None] = lambda: None,
) -> None:
    """Thread 1's shutdown contract, shared by backtest and live.

    stop() ends ``body`` with Stopped (not an error); any other exception is
    logged and handed to the SystemManager; consumers are always released.
    """
    error: BaseException | None = None
    try:
        body()
    except Stopped:
        pass
    except AdjustmentError as exc:  # bad data: its one line is the whole story, printed once
        error = exc
    except BaseException as exc:
        log.exception("%s failed", name)
        error = exc
    finally:
        cleanup()
        publisher.close()
        hooks.on_finished(error)


def wait_while_paused(hooks: CoordinatorHooks) -> bool:
    """Block while the run gate is clear; True if it was paused. Raises Stopped on stop()."""
    if hooks.run_gate.is_set():
        return False
    while not hooks.run_gate.wait(0.05):
        if hooks.stop.is_set():
            raise Stopped
    return True


def await_unless_stopped(fut: Future[T], stop: threading.Event) -> T:
    """Wait for an upkeep job, staying responsive to stop() (raises Stopped)."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            return fut.result(timeout=0.05)
        except TimeoutError:
            continue


@dataclass
class CoordinatorHooks:
    """How the coordinator reaches the SystemManager without importing it."""

    run_gate: threading.Event  # set while running, cleared while paused
    stop: threading.Event
    # set by pause() and stop() (after the gate/stop flag) to cut a pacing wait short
    wake: threading.Event = field(default_factory=threading.Event)
    pause_wall: float | None = None  # wall time pause() was called, for re-planning the pacing
    speed: float | None = None  # set_speed()'s wish; the coordinator re-plans its wait to it
    on_timer_expired: Callable[[bool], None] = lambda expired: None
    on_finished: Callable[[BaseException | None], None] = lambda error: None
    jitter: Callable[[], None] | None = None
    counters: dict[str, int] = field(default_factory=dict)


class StreamCoordinator(WorkerThread):
    def __init__(
        self,
        sessions: Sequence[SessionInfo],
        session_data: SessionData,
        upkeep: UpkeepWorker,
        loader: SessionLoader,
        clock: BacktestClock,
        pacer: Pacer,
        publisher: EventPublisher,
        hooks: CoordinatorHooks,
        check_interval_s: float = 60.0,
        end_of_data_timeout_s: float = 0.0,
        checks_on_upkeep_thread: bool = False,
    ) -> None:
        if check_interval_s <= 0:
            raise ValueError("check_interval must be positive")
        self.sessions = list(sessions)
        self.session_data = session_data
        self.upkeep = upkeep
        self.loader = loader
        self.clock = clock
        self.pacer = pacer
        self.publisher = publisher
        self.hooks = hooks
        self.check_us = int(check_interval_s * 1e6)
        self.end_of_data_timeout_s = end_of_data_timeout_s
        self.checks_on_upkeep_thread = checks_on_upkeep_thread
        self.merger = StreamMerger()
        self.reports: list[Any] = []
        super().__init__(self._run, "sessionflow-coordinator")

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        run_coordinator("stream coordinator", self._play_all, self.publisher, self.hooks)

    def _await(self, fut: Future[T]) -> T:
        return await_unless_stopped(fut, self.hooks.stop)

    def _gate(self) -> None:
        """Block while paused; on resume re-anchor pacing so paused time is not caught up."""
        if wait_while_paused(self.hooks):
            self.pacer.anchor(to_us(self.clock.now()))

    def _play_all(self) -> None:
        if not self.sessions:
            return
        # the first session's read runs on its own thread while upkeep loads the history
        first = self.upkeep.prefetch_aside(self.sessions[0])
        begun = self.upkeep.begin_first(self.sessions[0], first)
        for i, session in enumerate(self.sessions):
            upcoming = self.sessions[i + 1] if i + 1 < len(self.sessions) else None
            if i == 0:
                payload = self._await(first)
                self._await(begun)
            else:
                payload = self._await(self.upkeep.take_prefetched(session))
                self._await(self.upkeep.begin_session(session, False, payload.store_version))
            self.merger.load(payload)
            if upcoming is not None:
                self.upkeep.prefetch(upcoming)
            self._play(session)
            self._await(self.upkeep.roll(session, upcoming))

    def _play(self, session: SessionInfo) -> None:
        start_dt, end_dt = self.loader.window(session)
        open_us, close_us = to_us(session.open), to_us(session.close)
        start_us, end_us = to_us(start_dt), max(to_us(end_dt), close_us)
        self._gate()
        self.clock.advance(from_us(start_us))
        self.pacer.anchor(start_us)
        self.hooks.on_timer_expired(False)
        self._publish(
            [SessionStartEvent(session.date, session.open, session.close, from_us(start_us))]
        )
        checks = self._check_grid(open_us, close_us)
        ci, n_checks = 0, len(checks)
        unpaced = False
        merger, run_gate, stop = self.merger, self.hooks.run_gate, self.hooks.stop
        while True:
            if not run_gate.is_set():
                self._gate()
            if stop.is_set():
                raise Stopped
            t_item = merger.next_time()
            t_check = checks[ci] if ci < n_checks else None
            if t_item is None and t_check is None:
                break
            if t_item is None and not unpaced and t_check is not None and t_check < close_us:
                unpaced = self._data_ran_out()
            if t_item is not None and (t_check is None or t_item <= t_check):
                if t_item > end_us:
                    self._drop_late()
                    continue
                now = from_us(t_item)  # one datetime per step, shared by clock and events
                self._step_to(t_item, unpaced, now)
                self._deliver(merger.pop_group(), now)
                if t_item != t_check or not self._check_joins(t_item, unpaced, close_us):
                    continue
            else:
                assert t_check is not None
                now = from_us(t_check)
                self._step_to(t_check, unpaced, now)
            events = check_events(self._check(now, t_check, t_check == close_us), now)
            if events:
                self._publish(events)
            ci += 1
        self.clock.advance(from_us(end_us))
        self.session_data.end_session()
        report = self.session_data.report()
        self.reports.append(report)
        expired = unpaced
        self._publish([SessionEndEvent(session.date, from_us(end_us), report, expired)])

    def _check(self, now: datetime, t_us: int, final: bool) -> CheckResult:
        """One upkeep check; the coordinator waits for it either way (determinism)."""
        if self.checks_on_upkeep_thread:
            return self._await(self.upkeep.check(now, final))
        if self.hooks.jitter:
            self.hooks.jitter()
        return self.upkeep.check_inline(now, final, t_us)

    def _check_joins(self, t_us: int, unpaced: bool, close_us: int) -> bool:
        """Whether the check due at ``t_us``, the instant just delivered, runs in the same step.

        Time is already there, so its own step would only repeat the pause, stop and
        speed checks; it does when the step would do more: paused or stopped during the
        instant's callbacks, or no data left before the close (the data-ran-out wait
        comes first). The instant's events are published before the check runs either way.
        """
        hooks = self.hooks
        if not hooks.run_gate.is_set() or hooks.stop.is_set():
            return False
        if not unpaced:
            if t_us < close_us and self.merger.next_time() is None:
                return False
            if hooks.speed is not None:
                self._follow_speed(t_us)
        return True

    def _check_grid(self, open_us: int, close_us: int) -> list[int]:
        grid = list(range(open_us + self.check_us, close_us, self.check_us))
        grid.append(close_us)
        return grid

    def _data_ran_out(self) -> bool:
        """No items left before the close: wait for late data, then end the session quickly."""
        if self.end_of_data_timeout_s > 0:
            self.pacer.wall.wait(self.end_of_data_timeout_s, self.hooks.stop)
            if self.merger.next_time() is not None:
                return False
        self.hooks.on_timer_expired(True)
        return True

    def _drop_late(self) -> None:
        instant = self.merger.pop_group()
        dropped = len(instant.items) + instant.hi - instant.lo
        counters = self.hooks.counters
        counters["after_session_end"] = counters.get("after_session_end", 0) + dropped

    def _step_to(self, t_us: int, unpaced: bool, now: datetime) -> None:
        hooks = self.hooks
        if hooks.jitter:
            hooks.jitter()
        # at speed 0 with no set_speed() pending, pacing has nothing to do
        if not unpaced and (self.pacer.speed or hooks.speed is not None):
            self._pace(t_us)
        self.clock.advance(now)

    def _pace(self, t_us: int) -> None:
        """Wait until wall time reaches ``t_us``. A pause cuts the wait short: the step is
        not taken and time stays put; on resume the wait is re-planned from the simulated
        time already reached, so wall time spent paused never counts as backtest time."""
        self._follow_speed(t_us)
        if self.pacer.speed == 0:
            return  # never waits; a pause is taken at the top of the step loop
        hooks = self.hooks
        while True:
            hooks.wake.clear()  # before reading the flags: pause/stop set it after them
            if hooks.stop.is_set():
                raise Stopped
            if not hooks.run_gate.is_set():
                reached = self.pacer.position(t_us, hooks.pause_wall)
                wait_while_paused(hooks)
                self.pacer.anchor(reached)
                continue
            self._follow_speed(t_us)
            if not self.pacer.wait_until(t_us, hooks.wake):
                return

    def _follow_speed(self, t_us: int) -> None:
        """Apply a set_speed() from the simulated time reached, so no step is caught up."""
        want = self.hooks.speed
        if want is not None and want != self.pacer.speed:
            self.pacer.set_speed(want, t_us)

    def _deliver(self, instant: Instant, now: datetime) -> None:
        sd = self.session_data
        events: list[BatchEvent] = []
        if instant.bars is not None:
            rb, sl = instant.bars, slice(instant.lo, instant.hi)
            b = rb.batch
            part = b.take(sl)  # views: the columns written and, usually, the event's batch
            cols = (part.open, part.high, part.low, part.close, part.volume)
            # every bar of an instant shares one open; a group checked clean at load
            # (regular, sane volumes, each symbol once) takes the fast path
            ts = instant.time_us - MINUTE_US  # bars become available when their minute ends
            rows = rb.rows[sl]
            if rb.clean_list[instant.group] and sd.write_instant(rows, ts, *cols, checked=True):
                ok = None
            else:
                ok = sd.write_bars(rows, part.ts_us, *cols, part.regular)
            if ok is None or ok.all():  # the usual case: views, no copy
                events.append(BarSliceEvent(part, now, rows=rows))
            elif ok.any():
                keep = instant.bar_index()[ok]
                events.append(BarSliceEvent(b.take(keep), now, rows=rb.rows[keep]))
        if instant.items:
            self._deliver_items(instant.items, now, events)
        self.publisher.publish(events)

    def _deliver_items(self, items: list[Any], now: datetime, events: list[BatchEvent]) -> None:
        """Bars, quotes and ticks that came as objects (live items, stored quotes/ticks)."""
        sd = self.session_data
        objects = [x for x in items if isinstance(x, Bar)]
        if objects:
            kept = sd.add_bars(objects)
            if kept:
                batch = BarBatch.from_bars(kept)
                rows = sd.index_of(batch.symbol.tolist())
                events.append(BarSliceEvent(batch, now, rows=rows))
        quotes = [x for x in items if isinstance(x, Quote)]
        if quotes:
            sd.add_quotes(quotes)
            events.extend(QuoteEvent(q, now) for q in quotes)
        ticks = [x for x in items if isinstance(x, Tick)]
        if ticks:
            sd.add_ticks(ticks)
            events.extend(TickEvent(t, now) for t in ticks)

    def _publish(self, events: list[BatchEvent]) -> None:
        self.publisher.publish(events)


def check_events(result: CheckResult, now: datetime) -> list[BatchEvent]:
    """The events announcing one upkeep check, in the same order in backtest and live."""
    events: list[BatchEvent] = []
    if len(result.filled):
        events.append(BarSliceEvent(result.filled, now, filled=True, rows=result.filled_rows))
    for revised, slices in ((True, result.revised), (False, result.derived)):
        if slices:  # most checks announce nothing
            events.extend(
                DerivedSliceEvent(s.bars, now, s.interval, s.minutes, revised, s.rows)
                for s in slices
            )
    return events
