"""Many orders through the live broker and the local trading server, with the stream
dropped at random (seeded), then every order and the portfolio checked against the venue.

Why: reconciliation must hold over thousands of orders whose events are lost at any
moment, not only in the hand-made cases of the tests. The run is the live path end to
end (ExecutionManager, AlpacaBroker, alpaca-py over HTTP and websocket, the local
server's book); only the clock is a ManualClock the soak moves a minute at a time.
``benchmarks/live_orders.py`` runs 10,000 orders; ``tests/test_reconcile.py`` a few
hundred.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

from sessionflow.execution_manager.alpaca_broker import AlpacaBroker
from sessionflow.execution_manager.manager import ExecutionManager
from sessionflow.execution_manager.orders import Order, OrderStatus
from sessionflow.execution_manager.reconcile import differences
from sessionflow.models import Bar
from sessionflow.portfolio import Portfolio
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_server import FakeAlpacaTrading
from sessionflow.time_provider.calendar import ExchangeCalendar
from sessionflow.time_provider.live_clock import ManualClock

KEY, SECRET = "PKSOAK", "soak-secret"
OPEN = datetime.fromisoformat("2024-11-29T14:30:00+00:00")  # closes 18:00Z (early close)
CASH = 10_000_000
_VENUE_STATUS = {"filled": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED,
                 "expired": OrderStatus.EXPIRED}  # fmt: skip


@dataclass
class SoakResult:
    orders: int = 0  # submitted by the strategy
    sent: int = 0  # reached the venue (not refused by the manager or the venue)
    venue_orders: int = 0  # orders of this run the venue holds
    lost: list[str] = field(default_factory=list)  # state here differs from the venue's
    duplicated: int = 0  # venue orders no order here accounts for
    differences: list[str] = field(default_factory=list)  # portfolio vs account
    drops: int = 0
    reconciles: int = 0
    reconciled_fills: int = 0
    fills: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by reason, before the colon
    seconds: float = 0.0

    @property
    def whole(self) -> bool:
        return not self.lost and not self.duplicated and not self.differences


def bars(minutes: int, rng: random.Random, volume: int) -> list[Bar]:
    out, price = [], 100.0
    for m in range(minutes):
        o = price
        price = round(max(1.0, price + rng.choice((-0.25, -0.1, 0.0, 0.1, 0.25))), 2)
        hi, lo = max(o, price) + 0.05, min(o, price) - 0.05
        out.append(Bar("AAPL", OPEN + timedelta(minutes=m), o, hi, lo, price, volume))
    return out


def soak(orders: int, seed: int = 0, minutes: int = 200, drop_chance: float = 0.2,
         wait_s: float = 30.0) -> SoakResult:  # fmt: skip
    """``orders`` spread over ``minutes`` of one session; before each minute's orders the
    stream is dropped with ``drop_chance``. Market buys and sells (the volume cap of 2.5%
    of a bar is about what a minute's market orders ask, so some fill in parts) and far
    limit buys the strategy cancels a few minutes later or leaves to expire at the close."""
    rng = random.Random(seed)
    clock = ManualClock(OPEN)
    book = TradingBook(CASH, multiplier=1, calendar=ExchangeCalendar("XNYS"))
    server = FakeAlpacaTrading(clock, book, key=KEY, secret=SECRET, rate_limit=None)
    # the volume cap (2.5% of a bar) about what a minute's market orders ask: some partial
    server.add_bars(bars(minutes + 2, rng, max(2_000, int(orders / minutes * 500))))
    result = SoakResult()
    started = time.perf_counter()
    with server:
        client = TradingClient(KEY, SECRET, url_override=server.url)
        stream = TradingStream(KEY, SECRET, url_override=server.stream_url)
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = 0.02, 0.1
        broker = AlpacaBroker(client, stream, f"soak{seed}")
        last = {"AAPL": 100.0}
        portfolio = Portfolio(CASH)
        manager = ExecutionManager(broker, portfolio, ["AAPL"], clock, last.get)
        broker.start()
        assert broker.wait_connections(1, wait_s) and broker.settle(wait_s)
        resting: list[tuple[int, Order]] = []
        per_minute = orders / minutes
        for m in range(minutes):
            clock.set(OPEN + timedelta(minutes=m, seconds=30))
            server.advance()
            last["AAPL"] = float(book.price_of("AAPL"))
            if rng.random() < drop_chance:
                result.drops += server.drop_connections()
            broker.drain()
            while resting and resting[0][0] <= m:
                manager.cancel(resting.pop(0)[1].id)
            due = int((m + 1) * per_minute) - int(m * per_minute)
            for _ in range(due):
                result.orders += 1
                _decide(manager, portfolio, rng, m, resting, last["AAPL"])
            broker.drain()
        clock.set(OPEN + timedelta(hours=4))  # past the close: day orders expire
        server.advance()
        assert server.wait_listeners(1, wait_s) and broker.settle(wait_s)
        broker.reconcile_now(wait_s)  # whatever the last reconnect has not merged yet
        _check(result, manager, broker, book, portfolio)
        broker.stop()
    result.seconds = time.perf_counter() - started
    result.reconciles = broker.reconciles
    result.reconciled_fills = broker.counters["reconciled_fills"]
    return result


def _decide(manager: ExecutionManager, portfolio: Portfolio, rng: random.Random, minute: int,
            resting: list[tuple[int, Order]], price: float) -> None:  # fmt: skip
    roll = rng.random()
    if roll < 0.2:
        limit = round(price * 0.8, 2)
        order = manager.submit("AAPL", "buy", rng.randint(1, 20), limit=limit)
        if rng.random() < 0.7:
            resting.append((minute + rng.randint(1, 4), order))
    elif roll < 0.45 and portfolio.quantity("AAPL") > 40:
        manager.submit("AAPL", "sell", rng.randint(1, 20))
    else:
        manager.submit("AAPL", "buy", rng.randint(1, 30))


def _check(result: SoakResult, manager: ExecutionManager, broker: AlpacaBroker,
           book: TradingBook, portfolio: Portfolio) -> None:  # fmt: skip
    mine = {o.client_order_id: o for o in book.orders.values()
            if o.client_order_id.startswith(broker.prefix)}  # fmt: skip
    result.venue_orders = len(mine)
    accounted = 0
    for order in manager.orders:
        result.fills += sum(1 for e in order.events if e.fill is not None)
        venue = mine.get(broker.client_id(order))
        if venue is None:
            why = (order.reason or "").split(":")[0]
            result.rejected[why] = result.rejected.get(why, 0) + 1
            if order.status is not OrderStatus.REJECTED:
                result.lost.append(f"{order.id}: {order.status.value} here, unknown at the venue")
            continue
        accounted += 1
        result.sent += 1
        want = _VENUE_STATUS.get(venue.status)
        filled = int(venue.filled_qty)
        if order.status is not want or order.filled_quantity != filled:
            result.lost.append(
                f"{order.id}: {order.status.value} {order.filled_quantity} here, "
                f"{venue.status} {filled} at the venue"
            )
    result.duplicated = len(mine) - accounted
    positions = [book.position_json(s) for s in sorted(book.positions)]
    result.differences = differences(portfolio, positions, book.account_json())


__all__ = ["SoakResult", "soak"]
