"""Building blocks for the trading tests: one-bar slices and a broker with an order book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from sessionflow.events import BarSliceEvent, SessionEndEvent, SessionStartEvent
from sessionflow.execution_manager import (
    BacktestBroker,
    Fill,
    FillModel,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from sessionflow.execution_manager.commission import CommissionModel
from sessionflow.execution_manager.slippage import SlippageModel
from sessionflow.models import to_us
from sessionflow.store import BarBatch

T0 = datetime(2024, 11, 26, 14, 30, tzinfo=UTC)  # a session's open
MIN = timedelta(minutes=1)
SYMBOLS = ("AAPL", "SPY")


def bar_slice(
    ts: datetime,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: int = 1_000_000,
    symbol: str = "SPY",
    *,
    filled: bool = False,
    regular: bool = True,
) -> BarSliceEvent:
    """The slice announcing one 1m bar opening at ``ts`` (so published at ``ts + 1m``)."""
    batch = BarBatch.from_columns([symbol], [to_us(ts)], [o], [h], [lo], [c], [v], [regular])
    rows = np.array([SYMBOLS.index(symbol)], dtype=np.intp)
    return BarSliceEvent(batch, ts + MIN, filled=filled, rows=rows)


def order(
    side: str = "buy",
    qty: int = 100,
    limit: float | None = None,
    stop: float | None = None,
    *,
    at: datetime = T0,
    tif: str = "day",
    symbol: str = "SPY",
    oid: str = "o-1",
) -> Order:
    return Order(
        oid, oid, symbol, Side(side), qty, OrderType.from_prices(limit, stop),
        TimeInForce(tif), at, limit, stop,
    )  # fmt: skip


class Book:
    """A backtest broker plus the events it sent; applies fills to its orders as the
    ExecutionManager would (the broker reads ``remaining`` from them)."""

    def __init__(
        self,
        fill_model: FillModel | None = None,
        commission: CommissionModel | None = None,
        slippage: SlippageModel | None = None,
    ) -> None:
        self.broker = BacktestBroker(SYMBOLS, fill_model or FillModel(None), commission, slippage)
        self.events: list[OrderEvent] = []
        self.orders: dict[str, Order] = {}
        self.broker.on_order_event(self._on)

    def _on(self, ev: OrderEvent) -> None:
        self.events.append(ev)
        o = self.orders[ev.order_id]
        o.status = ev.status
        if ev.fill is not None:
            o.filled_quantity += ev.fill.quantity

    def submit(self, o: Order) -> Order:
        self.orders[o.id] = o
        self.broker.submit(o, o.submitted_at)
        return o

    def bar(self, *args: object, **kwargs: object) -> list[Fill]:
        before = len(self.events)
        self.broker.on_market(bar_slice(*args, **kwargs))  # type: ignore[arg-type]
        return [e.fill for e in self.events[before:] if e.fill is not None]

    def start(self, open_: datetime, close: datetime) -> None:
        self.broker.on_market(SessionStartEvent(open_.date(), open_, close, open_))

    def end(self, close: datetime) -> None:
        """The session's end event (the broker reads only its time, never the report)."""
        self.broker.on_market(SessionEndEvent(close.date(), close, None, False))  # type: ignore[arg-type]

    def statuses(self, oid: str = "o-1") -> list[OrderStatus]:
        return [e.status for e in self.events if e.order_id == oid]
