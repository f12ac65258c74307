"""SystemManager: one per running system, built in one place, passed to whoever needs it.

State machine (anything else raises ``InvalidTransition``)::

    STOPPED --start--> RUNNING --pause--> PAUSED --resume--> RUNNING
    RUNNING/PAUSED --stop or end of data--> STOPPED (final)
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sessionflow.data_manager import DataManager
from sessionflow.data_manager.live import LiveParts
from sessionflow.events import BatchEvent, Event
from sessionflow.execution_manager import (
    BacktestBroker,
    Broker,
    ExecutionManager,
    FillModel,
    RiskLimits,
    parse_commission,
    parse_slippage,
)
from sessionflow.execution_manager.risk import PreTradeRisk, TradeLimits
from sessionflow.portfolio import Portfolio
from sessionflow.store import Store, is_url, open_store
from sessionflow.store.errors import missing_store
from sessionflow.stream_coordinator import (
    CoordinatorHooks,
    EventPublisher,
    MonotonicWallClock,
    WallClock,
)
from sessionflow.system_manager.settings import Settings, check_speed
from sessionflow.time_provider import ExchangeCalendar

log = logging.getLogger(__name__)
_UPKEEP_SHARE = 0.1  # of the stop budget, kept for the upkeep join if the coordinator hangs


class Mode(enum.Enum):
    BACKTEST = "backtest"
    LIVE = "live"


class State(enum.Enum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"


class InvalidTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class StopReport:
    """What stop() achieved within its budget.

    ``unjoined`` names the worker threads still running when stop() returned (a
    consumer callback or an upkeep job that did not return in time); they are
    daemon threads and end with the process, but their work is not finished.
    """

    joined: bool
    unjoined: tuple[str, ...]
    elapsed_s: float
    timeout_s: float

    def message(self) -> str:
        """One line for logs and the CLI."""
        if self.joined:
            return f"stopped in {self.elapsed_s:.2f}s"
        return (
            f"thread(s) did not stop within {self.timeout_s:g}s: {', '.join(self.unjoined)}"
            " (a consumer callback or upkeep job is still running; its work is unfinished)"
        )


@dataclass(frozen=True)
class SystemStatus:
    """What a control surface (CLI, web dashboard) shows: one consistent read."""

    mode: str
    state: str
    clock: datetime  # the system's time: simulated in backtest, wall time in live
    speed: float
    session: date | None  # the session under way (or last played); None before the first

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "state": self.state,
            "clock": self.clock.isoformat(),
            "speed": self.speed,
            "session": None if self.session is None else self.session.isoformat(),
        }


class SystemManager:
    """Owns mode, state and the ``stream_coordinator_timer_expired`` flag; runs the workers."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        wall: WallClock | None = None,
        jitter: Callable[[], None] | None = None,
        live: LiveParts | None = None,
    ) -> None:
        self.settings = settings
        self.mode = Mode(settings.mode)
        self._state = State.STOPPED
        self._started = False
        self._lock = threading.Lock()
        self._run_gate = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()  # cuts the coordinator's pacing wait short
        self._done = threading.Event()
        self.error: BaseException | None = None
        self.stop_report: StopReport | None = None  # the last stop()'s, for the CLI
        self.stream_coordinator_timer_expired = False
        self.store = store
        self.calendar = ExchangeCalendar(settings.calendar)
        self.publisher = EventPublisher(self._stop)
        self._wall = wall or MonotonicWallClock()
        hooks = CoordinatorHooks(
            run_gate=self._run_gate,
            stop=self._stop,
            wake=self._wake,
            on_timer_expired=self._set_timer_expired,
            on_finished=self._finished,
            jitter=jitter,
        )
        self.data_manager = DataManager(
            settings,
            store,
            self.calendar,
            self.publisher,
            hooks,
            self._wall,
            upkeep_jitter=jitter,
            live=live,
        )
        venue = None if live is None else live.broker
        self.execution_manager = build_execution(settings, self.data_manager, venue)
        self.portfolio = self.execution_manager.portfolio
        # first of all consumers: orders are matched and the portfolio marked before
        # anyone sees an instant (docs/architecture.md, where an order fills)
        self.publisher.add_batch_callback(self.execution_manager.on_market)
        self.counters = hooks.counters
        self._hooks = hooks

    @property
    def state(self) -> State:
        return self._state

    @property
    def done(self) -> threading.Event:
        """Set when the coordinator has finished (end of data, stop, or error)."""
        return self._done

    def _set_timer_expired(self, expired: bool) -> None:
        self.stream_coordinator_timer_expired = expired

    def _transition(self, allowed: tuple[State, ...], to: State) -> None:
        with self._lock:
            if self._state not in allowed:
                raise InvalidTransition(f"cannot go from {self._state.value} to {to.value}")
            self._state = to

    def on_event(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback`` for every event, one per bar, on the coordinator thread, in order."""
        self.publisher.add_callback(callback)

    def on_batch(self, callback: Callable[[BatchEvent], None]) -> None:
        """Like :meth:`on_event` but bars come as columnar slices (the fast path)."""
        self.publisher.add_batch_callback(callback)

    async def events(self) -> AsyncIterator[Event]:
        """Async iterator over every event; subscribe before or after start()."""
        import asyncio

        sub = self.publisher.subscribe(asyncio.get_running_loop())
        if not self._started:
            self.start()
        async for ev in self.publisher.iterate(sub):
            yield ev

    async def batches(self) -> AsyncIterator[BatchEvent]:
        """Async iterator over columnar events (one slice per instant)."""
        import asyncio

        sub = self.publisher.subscribe(asyncio.get_running_loop(), per_bar=False)
        if not self._started:
            self.start()
        async for ev in self.publisher.iterate(sub):
            yield ev

    def start(self) -> None:
        with self._lock:
            if self._started:
                raise InvalidTransition("a system starts once; build a new one to run again")
            self._started = True
        self.data_manager.connect()  # live: raises (bad keys, no feed) before any thread starts
        self._transition((State.STOPPED,), State.RUNNING)
        self._run_gate.set()
        self.data_manager.upkeep.start()
        self.data_manager.coordinator.start()

    def pause(self) -> None:
        """Freeze backtest time at any speed: no further step is taken, and a step the
        coordinator is waiting for (pacing) is not delivered, until resume()."""
        self._transition((State.RUNNING,), State.PAUSED)
        self._hooks.pause_wall = self._wall.monotonic()
        self._run_gate.clear()
        self._wake.set()

    def resume(self) -> None:
        self._transition((State.PAUSED,), State.RUNNING)
        self._run_gate.set()

    @property
    def speed(self) -> float:
        """The replay speed in force (the last set_speed(), else the settings')."""
        wish = self._hooks.speed
        return self.settings.speed if wish is None else wish

    def set_speed(self, speed: float) -> None:
        """Replay at ``speed`` from now on (0 = as fast as possible), in any state.

        A wait under way is re-planned from the simulated time it had reached, as on
        resume, so changing speed never skips or repeats backtest time.
        """
        speed = check_speed(speed)
        if self.mode is Mode.LIVE:
            raise InvalidTransition("a live system runs at wall time; speed is for backtests")
        self._hooks.speed = float(speed)
        self._wake.set()

    def status(self) -> SystemStatus:
        current = self.data_manager.session_data.current_session
        return SystemStatus(
            mode=self.mode.value,
            state=self._state.value,
            clock=self.data_manager.clock.now(),
            speed=self.speed,
            session=None if current is None else current.date,
        )

    def stop(self, timeout: float = 2.0) -> StopReport:
        """Stop from any state; joins both workers within ``timeout`` seconds.

        Returns which threads did not end in time (also logged as a warning). Called
        from a consumer callback, the coordinator thread is the caller: it is not
        waited for and ends when the callback returns.
        """
        t0 = time.monotonic()
        with self._lock:
            self._state = State.STOPPED
        self._stop.set()
        self._run_gate.set()
        self._wake.set()
        dm = self.data_manager
        deadline = t0 + timeout  # one budget for both joins, not one each
        if dm.coordinator.alive:
            dm.coordinator.join(max(0.0, deadline - time.monotonic() - timeout * _UPKEEP_SHARE))
        dm.upkeep.stop(max(0.0, deadline - time.monotonic()))
        self._done.set()
        return self._stop_report(t0, timeout)

    def _stop_report(self, t0: float, timeout: float) -> StopReport:
        me = threading.current_thread()
        workers = (self.data_manager.coordinator.thread, self.data_manager.upkeep.thread)
        unjoined = tuple(t.name for t in workers if t.is_alive() and t is not me)
        report = StopReport(not unjoined, unjoined, time.monotonic() - t0, timeout)
        if unjoined:
            log.warning("stop: %s", report.message(), extra={"stop_report": report})
        self.stop_report = report
        return report

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def run(self) -> StopReport:
        """Start, block until the backtest ends, stop the workers; re-raise a worker error."""
        self.start()
        self._done.wait()
        report = self.stop()
        if self.error is not None:
            raise self.error
        return report

    def _finished(self, error: BaseException | None) -> None:
        self.error = error
        with self._lock:
            self._state = State.STOPPED
        self._done.set()


def build_execution(
    settings: Settings, data: DataManager, venue: Broker | None = None
) -> ExecutionManager:
    """The trading half: portfolio, broker and ExecutionManager from ``[trading]`` settings.

    ``venue``: a live venue's broker (``sessionflow live --strategy``); without one,
    orders fill by the backtest's fill model, over live bars too.
    """
    t = settings.trading
    broker: Broker
    if venue is not None:
        broker = venue
    else:
        broker = BacktestBroker(
            data.symbols,
            FillModel(t.max_volume_share, t.market_at_quote),
            parse_commission(t.commission),
            parse_slippage(t.slippage),
        )
    limits = TradeLimits(
        t.max_order_value, t.max_position_value, t.max_orders_per_minute, t.daily_loss_limit
    )
    sd = data.session_data
    known = frozenset(sd.symbols)  # a set: ``in`` a tuple of every symbol was a scan per order
    return ExecutionManager(
        broker,
        Portfolio(t.cash, t.account, data.symbols),
        data.symbols,
        data.clock,
        lambda sym: sd.latest_close(sym) if sym in known else None,
        RiskLimits(t.max_quantity, t.allow_short),
        last_close=data.sessions[-1].close if data.sessions else None,
        actions=lambda: sd.applied_actions,
        risk=PreTradeRisk(limits),
        prices=sd.latest_closes,
    )


def build_system(
    settings: Settings,
    store: Store | None = None,
    wall: WallClock | None = None,
    jitter: Callable[[], None] | None = None,
    live: LiveParts | None = None,
) -> SystemManager:
    """The one place a system is assembled: open the store, build every component."""
    if store is None:
        name = settings.store_path
        path = Path(name)
        if not is_url(name) and not path.exists() and settings.mode == "backtest":
            raise missing_store(name)  # live creates its store
        # a backtest only reads: many may share the store, and it may be read-only
        store = open_store(name, read_only=settings.mode == "backtest")
    return SystemManager(settings, store, wall=wall, jitter=jitter, live=live)
