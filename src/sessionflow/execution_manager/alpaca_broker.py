"""The ``Broker`` protocol over Alpaca's Trading API, with alpaca-py.

Why this shape: everything above the broker is the backtest's code, so this class
only translates. Orders go out over REST (submit, replace, cancel); what happens to
them comes back on the ``trade_updates`` stream, on the stream's thread, and is
queued; ``on_market`` (called first on the coordinator thread at every instant) and
``drain`` hand the queued events to the ExecutionManager in arrival order, so order
state changes only on the coordinator thread, as in a backtest.

Nothing sent twice, nothing applied twice:

- every order's ``client_order_id`` is ``{run_id}-{the manager's client id}``, so the
  venue can be asked about it by a later run, and a resubmission of the same order is
  refused by the venue (422) rather than duplicated;
- a submit that times out (or loses its connection) is looked up by its client id
  before any retry: found, it is linked; not found (404), it is sent once more with the
  same id; the lookup failing too leaves it ``unresolved`` (counted) for reconciliation;
- a fill is applied once per ``execution_id``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)
from alpaca.trading.stream import TradingStream

from sessionflow.corporate_actions.adjust import Action
from sessionflow.events import BatchEvent
from sessionflow.execution_manager.commission import CommissionModel, ZeroCommission
from sessionflow.execution_manager.orders import (
    PRICE_PLACES,
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Side,
    money,
)
from sessionflow.feeds.alpaca_rest import _TimeoutAdapter

log = logging.getLogger(__name__)

MAX_CLIENT_ID = 128  # Alpaca's limit on client_order_id
_CLOSED = {"canceled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED,
           "rejected": OrderStatus.REJECTED}  # fmt: skip


@dataclass
class _Placed:
    """One of our orders at the venue: its current Alpaca order and what it filled."""

    order: Order
    client_id: str
    quantity: int  # the order's total, as last replaced
    filled: int = 0
    value: Decimal = Decimal(0)
    charged: Decimal = Decimal(0)
    accepted: bool = False
    terms: tuple[int | None, float | None, float | None] | None = None  # a pending replace


class AlpacaBroker:
    """A live broker; ``start()`` opens the stream, ``stop()`` closes it."""

    def __init__(
        self,
        client: TradingClient,
        stream: TradingStream,
        run_id: str,
        *,
        commission: CommissionModel | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not run_id or len(run_id) > 40:
            raise ValueError(f"run id {run_id!r}: 1 to 40 characters")
        self.client, self.stream, self.run_id = client, stream, run_id
        self.commission: CommissionModel = commission or ZeroCommission()
        adapter = _TimeoutAdapter(timeout_s)
        client._session.mount("http://", adapter)
        client._session.mount("https://", adapter)
        self._callback: Callable[[OrderEvent], None] | None = None
        self._updates: queue.SimpleQueue[TradeUpdate] = queue.SimpleQueue()
        self._heard = threading.Condition()
        self.received = 0  # stream updates heard
        self._by_client_id: dict[str, _Placed] = {}  # every client id we sent, replacements too
        self._venue_id: dict[str, str] = {}  # our order id -> its current Alpaca order id
        self._executions: set[str] = set()
        self.unresolved: dict[str, Order] = {}  # submits whose fate the venue did not tell
        self.counters: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        stream.subscribe_trade_updates(self._on_update)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.stream.run, name="sessionflow-trade-updates", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        loop = self.stream._loop
        if loop is not None and loop.is_running():
            self.stream.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def on_order_event(self, callback: Callable[[OrderEvent], None]) -> None:
        self._callback = callback

    def client_id(self, order: Order) -> str:
        cid = f"{self.run_id}-{order.client_order_id}"
        if len(cid) > MAX_CLIENT_ID:
            raise ValueError(f"client order id {cid!r} is longer than {MAX_CLIENT_ID}")
        return cid

    def submit(self, order: Order, now: datetime) -> None:
        placed = _Placed(order, self.client_id(order), order.quantity)
        self._by_client_id[placed.client_id] = placed
        request = _request(order, placed.client_id)
        try:
            venue = self._send_once(request, placed.client_id)
        except APIError as err:
            self.counters["submit_refused"] += 1
            self._emit(OrderEvent(order.id, OrderStatus.REJECTED, now, reason=_why(err)))
            return
        if venue is None:
            self.unresolved[placed.client_id] = order
            self.counters["submit_unresolved"] += 1
            log.warning("submit of %s: no answer and no record at the venue yet", placed.client_id)
            return
        self._venue_id[order.id] = str(venue.id)

    def _send_once(self, request: OrderRequest, client_id: str) -> AlpacaOrder | None:
        """Submit; on a timeout look the order up by its client id before the one retry."""
        try:
            return _model(self.client.submit_order(request))
        except requests.RequestException as exc:
            self.counters["submit_timeout"] += 1
            log.warning("submit of %s: %s; looking it up before any retry", client_id, exc)
        found = self.lookup(client_id)
        if found is not None or client_id in self.unresolved:
            return found
        try:
            return _model(self.client.submit_order(request))
        except requests.RequestException:
            return self.lookup(client_id)
        except APIError as err:
            if err.status_code == 422:  # the first request landed meanwhile: same id
                return self.lookup(client_id)
            raise

    def lookup(self, client_id: str) -> AlpacaOrder | None:
        """The venue's order for ``client_id``; None when it has none. A failing lookup
        marks the id unresolved (its fate is for reconciliation to learn)."""
        try:
            return _model(self.client.get_order_by_client_id(client_id))
        except APIError as err:
            if err.status_code == 404:
                return None
            raise
        except requests.RequestException:
            placed = self._by_client_id.get(client_id)
            if placed is not None:
                self.unresolved[client_id] = placed.order
            return None

    def cancel(self, order_id: str, now: datetime, reason: str) -> None:
        venue = self._venue_id.get(order_id)
        if venue is None:
            self.counters["cancel_unknown"] += 1
            return
        try:
            self.client.cancel_order_by_id(venue)
        except APIError as err:  # already closed (422) or gone (404): the stream says how
            self.counters[f"cancel_refused_{err.status_code}"] += 1
            log.info("cancel %s refused: %s", order_id, _why(err))

    def replace(
        self,
        order_id: str,
        now: datetime,
        quantity: int | None,
        limit: float | None,
        stop: float | None,
    ) -> None:
        venue = self._venue_id.get(order_id)
        placed = next((p for p in self._by_client_id.values() if p.order.id == order_id), None)
        if venue is None or placed is None:
            self.counters["replace_unknown"] += 1
            return
        n = sum(1 for cid in self._by_client_id if cid.startswith(placed.client_id + "-r"))
        new_cid = f"{placed.client_id}-r{n + 1}"
        rest = None if quantity is None else quantity - placed.filled
        request = ReplaceOrderRequest(
            qty=rest, limit_price=limit, stop_price=stop, client_order_id=new_cid
        )
        self._by_client_id[new_cid] = placed
        placed.terms = (quantity, limit, stop)
        try:
            new = _model(self.client.replace_order_by_id(venue, request))
        except APIError as err:
            del self._by_client_id[new_cid]
            placed.terms = None
            self.counters["replace_refused"] += 1
            log.warning("replace %s refused: %s", order_id, _why(err))
            return
        self._venue_id[order_id] = str(new.id)

    def on_market(self, event: BatchEvent) -> None:
        self.drain()

    def apply_action(self, action: Action, now: datetime) -> None:
        """The venue adjusts working orders for splits itself."""

    def drain(self) -> int:
        """Hand every queued stream update to the manager, in order (coordinator thread)."""
        done = 0
        while True:
            try:
                update = self._updates.get_nowait()
            except queue.Empty:
                return done
            self._translate(update)
            done += 1

    async def _on_update(self, update: TradeUpdate) -> None:
        self._updates.put(update)
        with self._heard:
            self.received += 1
            self._heard.notify_all()

    def wait_received(self, count: int, timeout: float) -> bool:
        """Until ``count`` stream updates have been heard in all (tests, the CLI's stop)."""
        with self._heard:
            return self._heard.wait_for(lambda: self.received >= count, timeout)

    def _translate(self, update: TradeUpdate) -> None:
        event = str(getattr(update.event, "value", update.event))
        placed = self._by_client_id.get(update.order.client_order_id)
        if placed is None:  # another run's or a manual order: not ours to apply
            self.counters["foreign_update"] += 1
            return
        order, at = placed.order, update.timestamp
        if event in ("new", "accepted", "pending_new"):
            if placed.terms is not None:
                qty, limit, stop = placed.terms
                placed.terms = None
                placed.quantity = placed.quantity if qty is None else qty
                status = OrderStatus.PARTIALLY_FILLED if placed.filled else OrderStatus.ACCEPTED
                self._emit(OrderEvent(order.id, status, at, quantity=qty, limit=limit, stop=stop))
            elif not placed.accepted:
                placed.accepted = True
                self._emit(OrderEvent(order.id, OrderStatus.ACCEPTED, at))
        elif event in ("fill", "partial_fill"):
            self._fill(placed, update)
        elif event in _CLOSED:
            reason = f"alpaca: {event}"
            self._emit(OrderEvent(order.id, _CLOSED[event], at, reason=reason))
        else:  # replaced (the new order carries on), pending_*, restated...
            self.counters[f"update_{event}"] += 1

    def _fill(self, placed: _Placed, update: TradeUpdate) -> None:
        execution = str(update.execution_id)
        if execution in self._executions:
            self.counters["duplicate_execution"] += 1
            return
        self._executions.add(execution)
        order = placed.order
        qty = int(Decimal(str(update.qty)))
        price = money(float(update.price or 0)).quantize(PRICE_PLACES)
        placed.filled += qty
        placed.value += price * qty
        total = self.commission.order_commission(placed.filled, placed.value)
        fee, placed.charged = total - placed.charged, total
        fill = Fill(order.id, update.timestamp, order.symbol, order.side, qty, float(price),
                    float(fee))  # fmt: skip
        done = placed.filled >= placed.quantity
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        self._emit(OrderEvent(order.id, status, update.timestamp, fill=fill))

    def _emit(self, event: OrderEvent) -> None:
        if self._callback is not None:
            self._callback(event)


def _request(order: Order, client_id: str) -> OrderRequest:
    common: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": order.quantity,
        "side": OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
        "time_in_force": AlpacaTif(order.tif.value),
        "client_order_id": client_id,
    }
    if order.type is OrderType.MARKET:
        return MarketOrderRequest(**common)
    if order.type is OrderType.LIMIT:
        return LimitOrderRequest(limit_price=order.limit, **common)
    if order.type is OrderType.STOP:
        return StopOrderRequest(stop_price=order.stop, **common)
    return StopLimitOrderRequest(limit_price=order.limit, stop_price=order.stop, **common)


def _model(answer: Any) -> AlpacaOrder:
    return answer if isinstance(answer, AlpacaOrder) else AlpacaOrder(**answer)


def _why(err: APIError) -> str:
    try:
        message = err.message
    except (ValueError, KeyError, TypeError):
        message = str(err)
    return f"alpaca {err.status_code}: {message}"


__all__ = ["AlpacaBroker"]
