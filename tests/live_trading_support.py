"""A stored session replayed on the local data and trading servers, in process, with a
strategy trading it live through ``LiveStrategy`` (real SDK, real HTTP and websockets).

Both servers share one ``ReplayClock`` (as ``sessionflow feed-server --trading`` does);
the live side's clock starts at the same instant and rate when it connects. The test
waits on conditions (order events, the run's end), never on sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sessionflow import Settings
from sessionflow.data_manager.live import LiveParts
from sessionflow.execution_manager import Order, OrderEvent
from sessionflow.results import BacktestResult
from sessionflow.store import DuckDBStore
from sessionflow.strategy.base import Strategy
from sessionflow.strategy.live import BrokerSettings, LiveStrategy
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.testing.feed_replay import (
    LOCAL_KEY,
    LOCAL_SECRET,
    ReplayClock,
    plan_replay,
    start_replay,
)
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_server import FakeAlpacaTrading
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.time_provider.live_clock import WallTimeClock

WAIT = 30.0
DAY = date(2024, 12, 2)


@dataclass
class Venue:
    """The two local servers on one replay clock."""

    data: FakeAlpaca
    desk: FakeAlpacaTrading
    clock: ReplayClock
    rate: float


@contextmanager
def venue(
    store_path: Path, symbols: list[str], start: time, rate: float, wait: float = WAIT
) -> Iterator[Venue]:
    """The servers; the replay starts when a client subscribes, within ``wait`` seconds (a
    client in another process starts slower than one in this)."""
    cal = ExchangeCalendar()
    db = DuckDBStore(store_path, read_only=True)
    try:
        plan = plan_replay(db, cal, symbols, DAY, start)
    finally:
        db.close()
    clock = ReplayClock(plan.start, rate)
    data = FakeAlpaca(LOCAL_KEY, LOCAL_SECRET).start()
    desk = FakeAlpacaTrading(clock, TradingBook(Decimal(100_000), calendar=cal),
                             key=LOCAL_KEY, secret=LOCAL_SECRET).start()  # fmt: skip
    desk.add_bars(plan.bars)
    desk.run_clock(0.02)
    streaming: list[Future[None] | None] = []
    replaying = threading.Thread(
        target=lambda: streaming.append(start_replay(data, plan, rate, wait, clock)), daemon=True
    )
    replaying.start()
    try:
        yield Venue(data, desk, clock, rate)
    finally:
        desk.close()
        replaying.join(wait)
        for future in streaming:
            if future is not None:
                future.cancel()  # the rest of the session is not needed
        data.close()


def live_settings(v: Venue, store: Path, symbols: list[str], **trading: Any) -> Settings:
    return Settings.load(
        mode="live",
        store_path=store,
        symbols=symbols,
        live={
            "feed_url": v.data.ws_url, "rest_url": v.data.rest_url,
            "trading_url": v.desk.url, "trading_stream_url": v.desk.stream_url,
            "key_id": LOCAL_KEY, "secret_key": LOCAL_SECRET, "sessions": 1,
            "connect_timeout_seconds": WAIT, "silence_timeout_seconds": 3600,
        },
        trading=trading or None,
    )  # fmt: skip


@dataclass
class Trading:
    """One live strategy run on its own thread; order updates collected with waits."""

    run: LiveStrategy
    updates: list[tuple[Order, OrderEvent]] = field(default_factory=list)
    result: BacktestResult | None = None
    error: BaseException | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self) -> Trading:
        self.run.system.execution_manager.on_update(self._update)
        self._thread = threading.Thread(target=self._main, name="live-strategy", daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self.result = self.run.run()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def _update(self, order: Order, event: OrderEvent) -> None:
        with self._cond:
            self.updates.append((order, event))
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[tuple[Order, OrderEvent]]], bool]) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: pred(self.updates), WAIT)

    def stop(self) -> BacktestResult:
        """``SystemManager.stop`` (what Ctrl-C and the dashboard call), then the kill switch."""
        self.run.system.stop()
        assert self._thread is not None
        self._thread.join(3 * WAIT)  # the kill switch waits up to WAIT per step
        assert not self._thread.is_alive(), "the live run did not end"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def trade(
    v: Venue,
    settings: Settings,
    strategy: type[Strategy],
    params: dict[str, Any] | None = None,
    **broker: Any,
) -> Trading:
    clock = WallTimeClock(v.clock.start, v.rate, hold=True)  # starts when the feed connects
    bs = BrokerSettings(run_id="t1", stop_wait_s=WAIT, **broker)
    run = LiveStrategy(settings, strategy, params, bs, parts=LiveParts(clock=clock), environ={})
    return Trading(run).start()
