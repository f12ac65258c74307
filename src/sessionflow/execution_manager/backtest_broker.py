"""The backtest broker: the documented fill model over the bars the coordinator delivers.

An order meets only regular-session 1m bars that open at or after the moment it was
submitted (or last replaced): a bar opening at t arrives at t + 1 minute, so nothing
is matched against data that was available when the decision was made. Gap-filled
and corrected bars never fill. Working orders are matched in submission order and
share each bar's volume cap. Day orders expire at the session's real close.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import numpy as np

from sessionflow.corporate_actions.adjust import Action
from sessionflow.events import (
    BarSliceEvent,
    BatchEvent,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
)
from sessionflow.execution_manager.commission import CommissionModel, ZeroCommission
from sessionflow.execution_manager.fill_model import FillModel
from sessionflow.execution_manager.orders import (
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    money,
)
from sessionflow.execution_manager.slippage import NoSlippage, SlippageModel
from sessionflow.models import from_us, to_us

_ZERO = Decimal(0)
# members read on every order and fill: a module name costs less than an Enum class attribute
_MARKET, _LIMIT, _STOP_LIMIT = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_LIMIT
_ACCEPTED, _FILLED, _PARTIAL = (
    OrderStatus.ACCEPTED,
    OrderStatus.FILLED,
    OrderStatus.PARTIALLY_FILLED,
)


class Funds(Protocol):
    """The account behind the broker, asked when a buy fills (the ExecutionManager)."""

    def cash_for_buys(self) -> Decimal | None:
        """What a buy may spend now; None when the account may borrow (margin)."""
        ...

    def funds_checked(self, headroom: Decimal) -> None:
        """A fill-time cash decision: cash less the fill's cost (< 0: the fill was cut)."""
        ...


class _Working:
    """The broker's own view of one working order."""

    __slots__ = ("charged", "filled", "order", "since_us", "triggered", "value")

    def __init__(self, order: Order, since_us: int) -> None:
        self.order = order
        self.since_us = since_us  # bars opening before this cannot fill it
        self.triggered = False
        self.filled = 0
        self.value = _ZERO
        self.charged = _ZERO


class BacktestBroker:
    def __init__(
        self,
        symbols: Sequence[str],
        fill_model: FillModel | None = None,
        commission: CommissionModel | None = None,
        slippage: SlippageModel | None = None,
    ) -> None:
        self.fill_model = fill_model or FillModel()
        self.commission: CommissionModel = commission or ZeroCommission()
        self.slippage: SlippageModel = slippage or NoSlippage()
        self._row = {s: i for i, s in enumerate(sorted(symbols))}
        self._working: dict[str, _Working] = {}  # insertion order: submission order
        self._callbacks: list[Callable[[OrderEvent], None]] = []
        self._close: datetime | None = None
        self.funds: Funds | None = None  # set by the ExecutionManager

    def on_order_event(self, callback: Callable[[OrderEvent], None]) -> None:
        self._callbacks.append(callback)

    def _emit(self, event: OrderEvent) -> None:
        for cb in self._callbacks:
            cb(event)

    def submit(self, order: Order, now: datetime) -> None:
        self._working[order.id] = _Working(order, to_us(now))
        self._emit(OrderEvent(order.id, _ACCEPTED, now))

    def cancel(self, order_id: str, now: datetime, reason: str) -> None:
        if self._working.pop(order_id, None) is not None:
            self._emit(OrderEvent(order_id, OrderStatus.CANCELLED, now, reason=reason))

    def replace(
        self,
        order_id: str,
        now: datetime,
        quantity: int | None,
        limit: float | None,
        stop: float | None,
    ) -> None:
        w = self._working.get(order_id)
        if w is None:
            return
        w.since_us = to_us(now)  # the new terms meet only bars from now on
        status = OrderStatus.PARTIALLY_FILLED if w.filled else OrderStatus.ACCEPTED
        self._emit(OrderEvent(order_id, status, now, quantity=quantity, limit=limit, stop=stop))

    @property
    def working(self) -> int:
        return len(self._working)

    def on_market(self, event: BatchEvent) -> None:
        if isinstance(event, BarSliceEvent):
            if self._working and not event.filled and not event.corrected:
                self._match(event)
        elif isinstance(event, QuoteEvent):
            if self._working and self.fill_model.market_at_quote:
                self._match_quote(event)
        elif isinstance(event, SessionStartEvent):
            self._close = event.close
        elif isinstance(event, SessionEndEvent):
            self._expire_day(event.time if self._close is None else self._close)

    def apply_action(self, action: Action, now: datetime) -> None:
        """A split changes working orders as brokers do: quantity times the ratio (rounded
        down), prices divided by it; an order left with no shares is cancelled."""
        if action.split == 1.0:
            return
        for w in list(self._working.values()):
            o = w.order
            if o.symbol != action.symbol:
                continue
            ratio = money(action.split)
            qty = int(o.quantity * ratio)
            filled = int(o.filled_quantity * ratio)
            w.filled = filled
            if qty <= filled:
                self.cancel(o.id, now, f"split {action.split:g}:1 left no whole share")
                continue
            lim = None if o.limit is None else float(money(o.limit) / ratio)
            stp = None if o.stop is None else float(money(o.stop) / ratio)
            event = OrderEvent(o.id, o.status, now, reason=f"split {action.split:g}:1",
                               quantity=qty, limit=lim, stop=stp, filled=filled)  # fmt: skip
            self._emit(event)

    def _expire_day(self, close: datetime) -> None:
        for oid, w in list(self._working.items()):
            if w.order.tif is TimeInForce.DAY:
                del self._working[oid]
                self._emit(OrderEvent(oid, OrderStatus.EXPIRED, close, reason="day order at close"))

    def _match(self, event: BarSliceEvent) -> None:
        bars = event.bars
        working = list(self._working.values())
        found = bar_indices(event, self._row, [w.order.symbol for w in working])
        used: dict[int, int] = {}
        opened: dict[int, datetime] = {}  # a slice's bars share their open: one datetime
        at_quote = self.fill_model.market_at_quote
        ts_us, regular = bars.ts_us, bars.regular
        for w, i in zip(working, found, strict=True):
            order = w.order
            if at_quote and order.type is _MARKET:
                continue
            if i < 0 or not regular.item(i) or (ts := ts_us.item(i)) < w.since_us:
                continue
            available = self.fill_model.capacity(bars.volume.item(i)) - used.get(i, 0)
            o, h, lo = bars.open.item(i), bars.high.item(i), bars.low.item(i)
            qty, price, w.triggered = self.fill_model.match(order, w.triggered, o, h, lo, available)
            if price is None or qty <= 0:
                continue
            used[i] = used.get(i, 0) + qty
            at = opened.get(ts) or opened.setdefault(ts, from_us(ts))
            self._fill(w, qty, price, at, event.time)

    def _match_quote(self, event: QuoteEvent) -> None:
        q = event.quote
        if not q.regular:
            return
        ts = to_us(q.ts)
        for w in list(self._working.values()):
            o = w.order
            if o.type is OrderType.MARKET and o.symbol == q.symbol and ts >= w.since_us:
                price = q.ask_open if o.side.sign > 0 else q.bid_open
                if price > 0:
                    self._fill(w, o.remaining, price, q.ts, event.time)

    def _fill(self, w: _Working, qty: int, raw: float, at: datetime, now: datetime) -> None:
        order = w.order
        price = self.slippage.apply(money(raw), order.side)
        if order.type is _LIMIT or order.type is _STOP_LIMIT:
            price = _clip(order, price)  # slippage never makes a limit fill worse than its limit
        # a sale never needs cash; a buy asks the account what it may spend (None: margin)
        cash = None if order.side is Side.SELL or self.funds is None else self.funds.cash_for_buys()
        if cash is None or self.funds is None:
            self._book(w, qty, price, at, now)
            return
        total = self.commission.order_commission(w.filled + qty, w.value + price * qty)
        need = price * qty + (total - w.charged)  # as _cost, with the total kept for _book
        self.funds.funds_checked(cash - need)
        if need <= cash:
            self._book(w, qty, price, at, now, total)
            return
        # a cash account cannot owe: fill what the cash pays for, cancel the rest
        part = self._affordable(w, qty, price, cash)
        if part:
            self._book(w, part, price, at, now)
        left = order.quantity - w.filled
        self.cancel(order.id, now, (
            f"insufficient_cash_at_fill: {left} of {order.quantity} {order.symbol} not bought; "
            f"{qty} at {price} need {need:.2f} with commission, cash {cash:.2f}"
        ))  # fmt: skip

    def _book(
        self,
        w: _Working,
        qty: int,
        price: Decimal,
        at: datetime,
        now: datetime,
        total: Decimal | None = None,
    ) -> None:
        """Book ``qty`` at ``price``; ``total``: the order's commission with them, when
        the caller has just computed it."""
        order = w.order
        w.filled += qty
        w.value += price * qty
        if total is None:
            total = self.commission.order_commission(w.filled, w.value)
        fee, w.charged = total - w.charged, total
        fill = Fill(order.id, at, order.symbol, order.side, qty, float(price), float(fee))
        done = w.filled >= order.quantity
        if done:
            del self._working[order.id]
        self._emit(OrderEvent(order.id, _FILLED if done else _PARTIAL, now, fill))

    def _cost(self, w: _Working, qty: int, price: Decimal) -> Decimal:
        """Cash ``qty`` more shares at ``price`` take, with the commission they add."""
        fee = self.commission.order_commission(w.filled + qty, w.value + price * qty) - w.charged
        return price * qty + fee

    def _affordable(self, w: _Working, qty: int, price: Decimal, cash: Decimal) -> int:
        """The most shares below ``qty`` that ``cash`` pays for (costs grow with shares)."""
        lo, hi = 0, qty  # lo is affordable (0 trivially), hi is not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self._cost(w, mid, price) <= cash else (lo, mid)
        return lo


def _clip(order: Order, price: Decimal) -> Decimal:
    assert order.limit is not None
    limit = money(order.limit)
    return min(price, limit) if order.side.sign > 0 else max(price, limit)


def bar_indices(event: BarSliceEvent, row_of: dict[str, int], symbols: list[str]) -> list[int]:
    """Each symbol's bar index in the slice, -1 when it has none: one binary search of
    the slice's sorted ``rows`` for all of them (not one call per working order)."""
    rows = event.rows
    if rows is None:
        find = bar_finder(event, row_of)
        return [find(s) for s in symbols]
    want = np.fromiter((row_of.get(s, -1) for s in symbols), np.intp, len(symbols))
    if not len(rows):
        return [-1] * len(symbols)
    at = np.minimum(np.searchsorted(rows, want), len(rows) - 1)
    return np.where((rows[at] == want) & (want >= 0), at, -1).tolist()  # type: ignore[no-any-return]


def bar_finder(event: BarSliceEvent, row_of: dict[str, int]) -> Callable[[str], int]:
    """symbol -> its bar's index in the slice, -1 when it has none (no dict of the slice
    is built: a lookup is one binary search in the slice's sorted ``rows``)."""
    rows = event.rows
    if rows is None:
        at = {str(s): i for i, s in enumerate(event.bars.symbol.tolist())}
        return lambda sym: at.get(sym, -1)

    def find(sym: str) -> int:
        row = row_of.get(sym, -1)
        if row < 0:
            return -1
        i = int(np.searchsorted(rows, row))
        return i if i < len(rows) and int(rows[i]) == row else -1

    return find
