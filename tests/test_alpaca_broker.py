"""AlpacaBroker (the Broker protocol over alpaca-py) against the local trading server.

Real SDK, real HTTP and websocket; the server's clock is a ManualClock the test moves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream

from sessionflow.execution_manager.alpaca_broker import AlpacaBroker
from sessionflow.execution_manager.fill_model import FillModel
from sessionflow.execution_manager.manager import ExecutionManager
from sessionflow.execution_manager.orders import (
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from sessionflow.portfolio import Portfolio
from sessionflow.testing.trading_matcher import FillModelMatcher
from sessionflow.time_provider.live_clock import ManualClock
from tests.trading_support import KEY, SECRET, WAIT, Harness, bar, trading, utc

BARS = [
    bar("AAPL", "14:35", 100.0, 101.0, 99.0, 100.5),
    bar("AAPL", "14:36", 100.5, 102.0, 100.0, 101.5),
    bar("AAPL", "14:37", 101.5, 101.8, 98.0, 99.0),
]


def order(n: int, qty: int = 10, side: Side = Side.BUY, limit: float | None = None,
          at: str = "14:35:30") -> Order:  # fmt: skip
    kind = OrderType.MARKET if limit is None else OrderType.LIMIT
    return Order(f"o{n}", f"c{n}", "AAPL", side, qty, kind, TimeInForce.DAY, utc(at), limit)


class Run:
    def __init__(self, h: Harness, broker: AlpacaBroker) -> None:
        self.h, self.broker = h, broker
        self.events: list[OrderEvent] = []
        broker.on_order_event(self.events.append)

    def settle(self, heard: int) -> list[tuple[str, OrderStatus]]:
        """Wait until ``heard`` updates in all, drain them, and say what came."""
        assert self.broker.wait_received(heard, WAIT), self.broker.received
        assert self.broker.settle(WAIT)
        return [(e.order_id, e.status) for e in self.events]


@contextmanager
def live(timeout_s: float = 10.0, **book: Any) -> Iterator[Run]:
    with trading(BARS, start="14:35:30", listen=False, **book) as h:
        client = TradingClient(KEY, SECRET, url_override=h.server.url)
        stream = TradingStream(KEY, SECRET, url_override=h.server.stream_url)
        broker = AlpacaBroker(client, stream, "run7", timeout_s=timeout_s)
        broker.start()
        assert h.server.wait_listeners(1, WAIT)
        try:
            yield Run(h, broker)
        finally:
            broker.stop()


def test_submit_is_accepted_then_filled_with_the_run_prefixed_client_id() -> None:
    with live() as run:
        run.broker.submit(order(1), utc("14:35:30"))
        assert run.settle(1) == [("o1", OrderStatus.ACCEPTED)]
        run.h.at("14:37")
        assert run.settle(2)[-1] == ("o1", OrderStatus.FILLED)
        fill = run.events[-1].fill
        assert fill is not None
        assert (fill.quantity, fill.price, fill.time, fill.side) == (
            10,
            100.5,
            utc("14:36"),
            Side.BUY,
        )
        venue = run.h.client.get_order_by_client_id("run7-c1")
        assert venue.status == "filled"


def test_a_refused_submit_is_a_rejection_with_the_venues_reason() -> None:
    with live(cash=1_000, multiplier=1) as run:
        run.broker.submit(order(1), utc("14:35:30"))
        (event,) = run.events
        assert event.status is OrderStatus.REJECTED
        assert event.reason == "alpaca 403: insufficient buying power"


def test_cancel_and_replace_come_back_as_events() -> None:
    with live() as run:
        run.broker.submit(order(1, limit=90.0), utc("14:35:30"))
        run.broker.submit(order(2, limit=90.0), utc("14:35:30"))
        run.settle(2)
        run.broker.cancel("o1", utc("14:35:40"), "strategy")
        assert run.settle(3)[-1] == ("o1", OrderStatus.CANCELLED)
        run.broker.replace("o2", utc("14:35:40"), 5, 101.0, None)
        run.settle(5)  # replaced (old order), new (the replacement)
        last = run.events[-1]
        assert (last.order_id, last.status, last.quantity, last.limit) == (
            "o2", OrderStatus.ACCEPTED, 5, 101.0)  # fmt: skip
        run.h.at("14:37")
        assert run.settle(6)[-1] == ("o2", OrderStatus.FILLED)
        assert run.events[-1].fill is not None and run.events[-1].fill.price == 100.5


def test_a_timed_out_submit_that_landed_is_found_by_client_id_not_resent() -> None:
    with live(timeout_s=0.5) as run:
        late = run.h.server.hold("POST", "/v2/orders")  # carried out, answer held
        run.broker.submit(order(1), utc("14:35:30"))
        late.set()
        assert run.broker.counters["submit_timeout"] == 1
        posts = [r for r in run.h.server.requests if r == ("POST", "/v2/orders")]
        assert len(posts) == 1  # looked up, never resent
        assert ("GET", "/v2/orders:by_client_order_id") in run.h.server.requests
        assert not run.broker.unresolved
        run.h.at("14:37")
        assert run.settle(2) == [("o1", OrderStatus.ACCEPTED), ("o1", OrderStatus.FILLED)]
        assert len(run.h.server.book.orders) == 1


def test_a_timed_out_submit_that_had_not_landed_is_sent_once_more_and_never_doubled() -> None:
    with live(timeout_s=0.5) as run:
        stuck = run.h.server.hold("POST", "/v2/orders", before=True)  # arrives late
        run.broker.submit(order(1), utc("14:35:30"))
        assert run.broker.counters["submit_timeout"] == 1
        stuck.set()  # the first request lands after the retry: refused as a duplicate
        assert run.h.server.wait_events(1, WAIT)
        run.h.at("14:37")
        assert run.settle(2) == [("o1", OrderStatus.ACCEPTED), ("o1", OrderStatus.FILLED)]
        assert [o.client_order_id for o in run.h.server.book.orders.values()] == ["run7-c1"]


def test_a_fill_heard_twice_is_applied_once() -> None:
    with live() as run:
        run.broker.submit(order(1), utc("14:35:30"))
        run.h.at("14:37")
        run.settle(2)
        fill_update = next(u for u in _updates(run) if u.event == "fill")
        run.broker._updates.put(fill_update)  # the same execution again (a replay)
        run.broker.drain()
        assert [e.status for e in run.events].count(OrderStatus.FILLED) == 1
        assert run.broker.counters["duplicate_execution"] == 1


def _updates(run: Run) -> list[TradeUpdate]:
    return [TradeUpdate(**data) for data in run.h.server.events]


def test_orders_of_another_run_are_not_applied() -> None:
    with live() as run:
        other = MarketOrderRequest(
            symbol="AAPL", qty=1, side="buy", time_in_force="day", client_order_id="run6-c1"
        )
        run.h.client.submit_order(other)
        assert run.settle(1) == []
        assert run.broker.counters["foreign_update"] == 1


def test_a_submit_that_lands_between_lookup_and_retry_is_linked_not_doubled() -> None:
    with live(timeout_s=2.0) as run:
        stuck = run.h.server.hold("POST", "/v2/orders", before=True)
        lookup = run.h.server.hold("GET", "/v2/orders:by_client_order_id")  # 404, answered late
        submit = threading.Thread(target=run.broker.submit, args=(order(1), utc("14:35:30")))
        submit.start()
        assert run.h.server.wait_request("GET", "/v2/orders:by_client_order_id", WAIT)
        stuck.set()  # the first request lands now, after the lookup found nothing
        assert run.h.server.wait_events(1, WAIT)
        lookup.set()
        submit.join(WAIT)
        assert run.broker.counters["submit_timeout"] == 1 and not run.broker.unresolved
        assert [o.client_order_id for o in run.h.server.book.orders.values()] == ["run7-c1"]
        run.h.at("14:37")
        assert run.settle(2) == [("o1", OrderStatus.ACCEPTED), ("o1", OrderStatus.FILLED)]


def test_the_execution_manager_trades_through_it_unchanged() -> None:
    with live() as run:
        clock = ManualClock(utc("14:35:30"))
        last = {"AAPL": 100.0}
        manager = ExecutionManager(run.broker, Portfolio(100_000), ["AAPL"], clock, last.get)
        mine = manager.submit("AAPL", "buy", 10, client_order_id="entry")
        resting = manager.submit("AAPL", "buy", 5, limit=90.0)
        run.settle(2)
        assert mine.status is OrderStatus.ACCEPTED
        manager.cancel(resting.id)
        run.settle(3)
        run.h.at("14:37")
        run.settle(4)
        assert (mine.status, mine.filled_quantity, mine.avg_fill_price) == (
            OrderStatus.FILLED, 10, 100.5)  # fmt: skip
        assert resting.status is OrderStatus.CANCELLED
        assert (
            run.h.server.book.orders[run.broker._venue_id[mine.id]].client_order_id == "run7-entry"
        )
        assert manager.portfolio.position("AAPL").quantity == 10
        assert manager.portfolio.cash == Decimal(100_000) - Decimal("1005")


def test_partial_fills_come_back_one_fill_each_then_filled() -> None:
    with live(matcher=FillModelMatcher(FillModel(0.005))) as run:  # 5 of a 1,000 bar
        run.broker.submit(order(1), utc("14:35:30"))
        run.h.at("14:38")
        assert [status for _, status in run.settle(3)] == [
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
        ]
        fills = [e.fill for e in run.events if e.fill is not None]
        assert [(f.quantity, f.price) for f in fills] == [(5, 100.5), (5, 101.5)]
