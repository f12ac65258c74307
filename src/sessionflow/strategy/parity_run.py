"""Run a strategy twice on stored sessions, as a backtest and live, and compare the logs.

The live run is the real live path, ``LiveStrategy`` (strategy/live.py, what
``sessionflow live --strategy`` runs): the local data server (``FakeAlpaca``) streams
the stored bars over Alpaca's websocket protocol, the live system receives them through
alpaca-py, and the strategy's orders go through ``AlpacaBroker`` (alpaca-py's
``TradingClient`` and ``TradingStream``) to the local trading server, which fills them
on the same stored bars with the backtest's fill model.

Why in lockstep on a manual clock: a parity check must give the same answer every
time, on a loaded CI machine too. For each minute the driver moves the shared clock to
the minute's end, lets the trading server fill what the bar allows and waits until
the broker heard every event, streams the minute's bars and waits until the strategy
has seen them, then moves the clock on by ``bar_grace_seconds`` and waits for the
upkeep check that announces derived bars (where a crossover on 5m bars decides). Every
step waits on an event, with a timeout; nothing sleeps.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sessionflow.data_manager.live import LiveParts
from sessionflow.events import BarSliceEvent, BatchEvent, SessionEndEvent, SessionStartEvent
from sessionflow.execution_manager import FillModel, parse_slippage
from sessionflow.execution_manager.alpaca_broker import AlpacaBroker
from sessionflow.models import MINUTE, Bar
from sessionflow.store import DuckDBStore, Store
from sessionflow.strategy.base import Strategy
from sessionflow.strategy.live import BrokerSettings, LiveStrategy
from sessionflow.strategy.parity import Difference, ParityLog, capture, compare
from sessionflow.strategy.run import Backtest
from sessionflow.stream_coordinator.live import LiveCoordinator
from sessionflow.system_manager import Settings
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg
from sessionflow.testing.feed_replay import LOCAL_KEY, LOCAL_SECRET
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_matcher import FillModelMatcher
from sessionflow.testing.trading_server import FakeAlpacaTrading
from sessionflow.time_provider import ExchangeCalendar, SessionInfo
from sessionflow.time_provider.live_clock import ManualClock
from sessionflow.time_provider.schedule import FixedSchedule

WAIT_S = 30.0  # per step; a step that takes longer is a failure, named
LEAD = timedelta(seconds=30)  # the clock starts this long before the first open
RUN_ID = "parity"


class ParityError(RuntimeError):
    """A parity run could not complete; the message says which step."""


@dataclass
class ParityOutcome:
    backtest: ParityLog
    live: ParityLog
    difference: Difference | None
    decision_lag: timedelta
    sessions: int
    bars: int

    @property
    def ok(self) -> bool:
        return self.difference is None


def run_parity(
    settings: Settings,
    strategy: type[Strategy],
    params: dict[str, Any] | None = None,
    store: Store | None = None,
    workdir: Path | None = None,
) -> ParityOutcome:
    """The backtest of ``settings``' sessions and the live run of the same sessions on the
    local servers, compared (``parity.compare``). ``store`` is only read."""
    bt = Backtest(settings, strategy, params, store)
    source = bt.system.store
    try:
        dm = bt.system.data_manager
        sessions, symbols = list(dm.sessions), list(dm.symbols)
        back = capture(bt.system, len(sessions))
        try:  # not Backtest.run: its statistics are not compared
            bt.runner.start()
            bt.system.run()
            bt.runner.stop()
        except Exception as exc:
            raise ParityError(f"the backtest failed: {exc}") from exc
        lag = timedelta(seconds=settings.live.bar_grace_seconds)
        with tempfile.TemporaryDirectory(prefix="sf-parity-", dir=workdir) as tmp:
            live, bars = _live(settings, strategy, params, source, sessions, symbols, Path(tmp))
    finally:
        if store is None:
            source.close()
    if not (back.closed and live.closed):
        raise ParityError("a run ended before its last session did")
    return ParityOutcome(back, live, compare(back, live, lag), lag, len(sessions), bars)


class _Seen:
    """What the live system delivered (the last consumer: the strategy saw it first)."""

    def __init__(self) -> None:
        self.bars = self.starts = self.ends = 0
        self.cond = threading.Condition()

    def __call__(self, ev: BatchEvent) -> None:
        with self.cond:
            if isinstance(ev, BarSliceEvent) and not ev.filled and not ev.corrected:
                self.bars += len(ev.bars)
            elif isinstance(ev, SessionStartEvent):
                self.starts += 1
            elif isinstance(ev, SessionEndEvent):
                self.ends += 1
            self.cond.notify_all()

    def wait(self, what: str, count: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: getattr(self, what) >= count, WAIT_S):
                raise ParityError(f"live: {what} stayed at {getattr(self, what)}, not {count}")


def _seed(path: Path, source: Store, symbols: list[str], cal: ExchangeCalendar,
          first: SessionInfo, days: int) -> DuckDBStore:  # fmt: skip
    """The live side's own store: the trailing sessions before the first one and the
    corporate actions, so it warms up on what the backtest warms up on. Live writes
    what it receives into it; the source store is never written."""
    store = DuckDBStore(path)
    before = cal.sessions(first.date - timedelta(days=3 * days + 10), first.date)
    before = [s for s in before if s.date < first.date][-days:] if days else []
    if before:
        store.upsert_bars(source.load_bars(symbols, before[0].open, first.open, False))
    store.write_actions(source.load_actions(symbols), source.load_symbol_map(symbols))
    return store


def _live(
    settings: Settings,
    strategy: type[Strategy],
    params: dict[str, Any] | None,
    source: Store,
    sessions: list[SessionInfo],
    symbols: list[str],
    tmp: Path,
) -> tuple[ParityLog, int]:
    cal = ExchangeCalendar(settings.calendar)
    bars = list(source.load_bars(symbols, sessions[0].open, sessions[-1].close).iter_bars())
    t = settings.trading
    grace = settings.live.bar_grace_seconds
    clock = ManualClock(sessions[0].open - LEAD)
    book = TradingBook(
        t.cash,
        multiplier=1 if t.account == "cash" else 2,
        shorting=t.allow_short,
        matcher=FillModelMatcher(
            FillModel(t.max_volume_share, t.market_at_quote), parse_slippage(t.slippage)
        ),
        calendar=cal,
        fill_grace_s=grace,
    )
    key, secret = LOCAL_KEY, LOCAL_SECRET
    store = _seed(tmp / "live.duckdb", source, symbols, cal, sessions[0], settings.trailing_days)
    with (
        FakeAlpaca(key, secret) as data,
        FakeAlpacaTrading(clock, book, key=key, secret=secret, rate_limit=None) as desk,
    ):
        data.add_rest_bars(bars)
        data.follow(clock.now)
        desk.add_bars(bars)
        live = settings.live.model_copy(
            update={
                "feed_url": data.ws_url,
                "rest_url": data.rest_url,
                "trading_url": desk.url,
                "trading_stream_url": desk.stream_url,
                "key_id": SecretStr(key),
                "secret_key": SecretStr(secret),
                "sessions": len(sessions),
                "connect_timeout_seconds": WAIT_S,
                "silence_timeout_seconds": 86_400.0,  # the manual clock never stalls
            }
        )
        config = settings.model_copy(
            update={"mode": "live", "store_path": str(tmp / "live.duckdb"), "live": live}
        )
        run = LiveStrategy(
            config,
            strategy,
            params,
            BrokerSettings(run_id=RUN_ID, stop_wait_s=WAIT_S),
            parts=LiveParts(clock=clock, schedule=FixedSchedule(sessions)),
            environ={},
            store=store,
        )
        system = run.system
        # the replay's sessions are known, as a backtest's are: no order after the last
        system.execution_manager.last_close = sessions[-1].close
        log = capture(system, len(sessions))
        seen = _Seen()
        system.on_batch(seen)
        coordinator = system.data_manager.coordinator
        assert isinstance(coordinator, LiveCoordinator)
        by_minute: dict[datetime, list[Bar]] = defaultdict(list)
        for b in bars:
            by_minute[b.ts].append(b)
        run.broker.start()
        try:  # LiveStrategy.run's steps, with the stepping between start and end
            if not desk.wait_listeners(1, WAIT_S):
                raise ParityError("live: the broker's trade_updates stream did not listen")
            run.runner.start()
            system.start()
            step = _Stepper(clock, desk, run.broker, data, seen, coordinator, grace, by_minute)
            for n, session in enumerate(sessions, 1):
                step.session(session, n)
            if not system.wait(WAIT_S):
                raise ParityError("live: the run did not end after its last session")
            system.stop()
            if system.error is not None:
                raise ParityError(f"live system failed: {system.error}") from system.error
            run.runner.stop()  # as a live run ends (its statistics are not compared)
            run.wind_down("run ended")
        finally:
            system.stop()
            _stop_broker(run.broker, desk)
            store.close()
    return log, len(bars)


def _stop_broker(broker: AlpacaBroker, desk: FakeAlpacaTrading) -> None:
    """The SDK notices a stop only after a frame or 5 s of silence, so the server ends the
    connection too (the SDK's warning about that is expected here, not news)."""
    sdk = logging.getLogger("alpaca.trading.stream")
    level = sdk.level
    sdk.setLevel(logging.ERROR)
    try:
        broker.stop(0.0)
        desk.drop_connections()
        broker.stop()
    finally:
        sdk.setLevel(level)


class _Stepper:
    """Moves the shared clock minute by minute; see the module docstring."""

    def __init__(
        self,
        clock: ManualClock,
        desk: FakeAlpacaTrading,
        broker: AlpacaBroker,
        data: FakeAlpaca,
        seen: _Seen,
        coordinator: LiveCoordinator,
        grace_s: float,
        by_minute: dict[datetime, list[Bar]],
    ) -> None:
        self.clock, self.desk, self.broker, self.data = clock, desk, broker, data
        self.seen, self.coordinator = seen, coordinator
        self.grace = timedelta(seconds=grace_s)
        self.by_minute = by_minute
        self.pushed = 0

    def _venue(self, to: datetime) -> None:
        """The clock to ``to``; the trading server fills and expires what that allows, and
        the broker hears every event before the next bar is streamed."""
        self.clock.set(to)
        self.desk.advance()
        sent = len(self.desk.events)
        if not self.broker.wait_received(sent, WAIT_S):
            raise ParityError(f"live: the broker heard {self.broker.received} of {sent} events")

    def session(self, s: SessionInfo, n: int) -> None:
        self._venue(s.open)
        self.seen.wait("starts", n)
        minute = s.open
        while minute < s.close:
            end = minute + MINUTE
            self._venue(end)
            bars = self.by_minute.get(minute, [])
            if bars:
                self.data.push([bar_msg(b) for b in bars])
                self.pushed += len(bars)
                self.seen.wait("bars", self.pushed)
            checks = self.coordinator.checks
            self.clock.set(end + self.grace)
            if end < s.close and not self.coordinator.wait_checks(checks + 1, WAIT_S):
                raise ParityError(f"live: no upkeep check announced after {end:%H:%M}Z")
            minute = end
        self.seen.wait("ends", n)


__all__ = ["ParityError", "ParityOutcome", "run_parity"]
