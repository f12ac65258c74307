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
- a fill is applied once per ``execution_id`` and once per (venue order, cumulative
  quantity), the key REST's FILL activities carry too.

Reconciliation (``reconcile.py`` has the rules): each time the stream starts listening
(the first start and every reconnect) a marker is queued where the stream is, a thread
reads the venue's state over REST, and ``drain`` merges it when it reaches the marker,
so no caller has to ask. A resumed run (``resume=``: the run ids of the killed runs it
continues) adopts their orders the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Sequence
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
from sessionflow.execution_manager import reconcile
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
from sessionflow.execution_manager.reconcile import Adopter, Json, Snapshot, fill_key, when
from sessionflow.feeds.alpaca_rest import _TimeoutAdapter
from sessionflow.portfolio import Portfolio

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
    closed: bool = False  # filled, cancelled, expired or rejected: told once
    at: datetime | None = None  # when the venue took its first version


class _Pending:
    """Where the stream started listening: the REST snapshot read for that moment."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.snapshot: Snapshot | None = None


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
        resume: Sequence[str] = (),
        read_attempts: int = 5,
    ) -> None:
        for rid in (run_id, *resume):
            if not rid or len(rid) > 40:
                raise ValueError(f"run id {rid!r}: 1 to 40 characters")
        self.client, self.stream, self.run_id = client, stream, run_id
        self.resume = tuple(f"{r}-" for r in resume)  # prefixes of the runs this one continues
        self._resumed = not resume
        self.read_attempts = read_attempts
        self.commission: CommissionModel = commission or ZeroCommission()
        adapter = _TimeoutAdapter(timeout_s)
        client._session.mount("http://", adapter)
        client._session.mount("https://", adapter)
        self._callback: Callable[[OrderEvent], None] | None = None
        self._updates: queue.SimpleQueue[TradeUpdate | _Pending] = queue.SimpleQueue()
        self._heard = threading.Condition()
        self.received = 0  # stream updates heard
        self.connections = 0  # times the stream started listening
        self.reconciles = 0  # snapshots merged
        self._waiting: _Pending | None = None  # a snapshot drain waits for
        self._closing = threading.Event()
        self._adopter: Adopter | None = None
        self.last_snapshot: Snapshot | None = None
        self._by_client_id: dict[str, _Placed] = {}  # every client id we sent, replacements too
        self._venue_id: dict[str, str] = {}  # our order id -> its current Alpaca order id
        self._by_venue: dict[str, _Placed] = {}  # every Alpaca order id of ours -> its order
        self._executions: set[str] = set()
        self._applied: set[tuple[str, str]] = set()  # fill_key of every fill applied
        self.unresolved: dict[str, Order] = {}  # submits whose fate the venue did not tell
        self.counters: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        stream.subscribe_trade_updates(self._on_update)
        dispatch = stream._dispatch

        async def listening_too(msg: dict[str, Any]) -> None:
            if msg.get("stream") == "listening":
                self._listening()
            await dispatch(msg)

        stream._dispatch = listening_too  # type: ignore[method-assign]

    @property
    def prefix(self) -> str:
        return f"{self.run_id}-"

    def adopt_into(self, adopter: Adopter) -> None:
        """Where a resumed run's adopted orders go (the ExecutionManager registers)."""
        self._adopter = adopter

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.stream.run, name="sessionflow-trade-updates", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._closing.set()
        loop = self.stream._loop
        if loop is not None and loop.is_running():
            self.stream.stop()  # the SDK sees this between reads (up to 5 s): close the socket
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stream.close(), loop).result(timeout)
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
            self._refused(placed, err, now)
            return
        if venue is None:
            self.unresolved[placed.client_id] = order
            self.counters["submit_unresolved"] += 1
            log.warning("submit of %s: no answer and no record at the venue yet", placed.client_id)
            return
        self.link(placed, str(venue.id), venue.submitted_at)

    def _refused(self, placed: _Placed, err: APIError, now: datetime) -> None:
        self.counters["submit_refused"] += 1
        placed.closed = True
        self._emit(OrderEvent(placed.order.id, OrderStatus.REJECTED, now, reason=_why(err)))

    def link(self, placed: _Placed, venue_id: str, at: datetime | None) -> None:
        """``venue_id`` is the current Alpaca order of ``placed`` (settles an unresolved)."""
        self._venue_id[placed.order.id] = venue_id
        self._by_venue[venue_id] = placed
        placed.at = placed.at or at
        self.unresolved.pop(placed.client_id, None)

    def resend(self, client_id: str, now: datetime) -> None:
        """An unresolved submit the venue has no record of: sent once more, same id."""
        placed = self._by_client_id[client_id]
        self.counters["resent"] += 1
        try:
            venue = self._send_once(_request(placed.order, client_id), client_id)
        except APIError as err:
            self.unresolved.pop(client_id, None)
            self._refused(placed, err, now)
            return
        if venue is not None:
            self.link(placed, str(venue.id), venue.submitted_at)

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
        self.link(placed, str(new.id), None)

    def on_market(self, event: BatchEvent) -> None:
        self.drain()

    def apply_action(self, action: Action, now: datetime) -> None:
        """The venue adjusts working orders for splits itself."""

    def drain(self) -> int:
        """Hand every queued stream update to the manager, in order (coordinator thread);
        at a reconnect's marker, merge its snapshot first, or stop there until it is read."""
        done = 0
        while True:
            if self._waiting is not None:
                if not self._waiting.ready.is_set():
                    return done
                pending, self._waiting = self._waiting, None
                self._merge(pending)
            try:
                item = self._updates.get_nowait()
            except queue.Empty:
                return done
            if isinstance(item, _Pending):
                self._waiting = item
                continue
            self._translate(item)
            done += 1

    def settle(self, timeout: float) -> bool:
        """Drain, waiting for any snapshot being read (tests, the CLI's stop); False when
        one was not read in time."""
        with self._heard:
            self._heard.wait_for(lambda: self._waiting is None or self._waiting.ready.is_set(),
                                 timeout)  # fmt: skip
        self.drain()
        while self._waiting is not None:
            if not self._waiting.ready.wait(timeout):
                return False
            self.drain()
        return True

    def reconcile_now(self, timeout: float = 10.0) -> bool:
        """Read and merge the venue's state now (coordinator thread), behind what is queued;
        False when a snapshot before it was not read within ``timeout``."""
        pending = _Pending()
        self._read_into(pending)
        self._updates.put(pending)
        return self.settle(timeout)

    def _listening(self) -> None:
        """The stream listens again (stream thread): mark the place, read in the background."""
        pending = _Pending()
        self._updates.put(pending)
        with self._heard:
            self.connections += 1
            self._heard.notify_all()
        threading.Thread(
            target=self._read_into, args=(pending,), name="sessionflow-reconcile", daemon=True
        ).start()

    def wait_connections(self, count: int, timeout: float) -> bool:
        """Until the stream has started listening ``count`` times in all."""
        with self._heard:
            return self._heard.wait_for(lambda: self.connections >= count, timeout)

    def _read_into(self, pending: _Pending) -> None:
        delay = 0.2
        for attempt in range(self.read_attempts):
            try:
                pending.snapshot = reconcile.read(self.client, self._wanted(), self.prefix)
                break
            except (APIError, requests.RequestException) as exc:
                self.counters["reconcile_read_errors"] += 1
                log.warning("reconcile read %d failed: %s", attempt + 1, exc)
                if self._closing.wait(delay):
                    break
                delay = min(delay * 2, 5.0)
        pending.ready.set()
        with self._heard:
            self._heard.notify_all()

    def _wanted(self) -> reconcile.Wanted:
        placed = {id(p): p for p in list(self._by_client_id.values())}.values()
        open_ids = {
            self._venue_id[p.order.id]: p.at
            for p in placed
            if not p.closed and p.order.id in self._venue_id
        }
        resume = () if self._resumed else self.resume
        return reconcile.Wanted(open_ids, list(self.unresolved), resume)

    def _merge(self, pending: _Pending) -> None:
        snap = pending.snapshot
        if snap is None:
            self.counters["reconcile_failed"] += 1
            log.warning("reconciliation skipped: the venue could not be read")
            return
        reconcile.merge(self, snap)
        self._resumed = self._resumed or bool(snap.adopt) or not self.resume
        self.last_snapshot = snap
        self.reconciles += 1

    def compare(self, portfolio: Portfolio) -> list[str]:
        """Differences between ``portfolio`` and the account now (reconcile.differences)."""
        positions = self.client.get("/positions")
        account = self.client.get("/account")
        return reconcile.differences(portfolio, positions, account)  # type: ignore[arg-type]

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
        cid, vid = update.order.client_order_id, str(update.order.id)
        placed = self._by_client_id.get(cid)
        if placed is None and cid.startswith(self.resume) and self.resume:
            prefix = next(p for p in self.resume if cid.startswith(p))
            self.adopt([update.order.model_dump(mode="json")], prefix)
            placed = self._by_client_id.get(cid)
        if placed is None:  # another run's or a manual order: not ours to apply
            self.counters["foreign_update"] += 1
            return
        if vid not in self._by_venue:  # its submit's answer was lost: the stream settles it
            self.link(placed, vid, update.order.submitted_at)
        at = update.timestamp
        if event in ("new", "accepted", "pending_new"):
            self.accepted(placed, at, replacement=cid != placed.client_id)
        elif event in ("fill", "partial_fill"):
            execution = str(update.execution_id)
            if execution in self._executions:
                self.counters["duplicate_execution"] += 1
                return
            self._executions.add(execution)
            key = fill_key(vid, update.order.filled_qty or 0)
            qty = int(Decimal(str(update.qty)))
            price = money(float(update.price or 0)).quantize(PRICE_PLACES)
            self.fill(placed, key, qty, price, at)
        elif event in _CLOSED:
            self.close(placed, event, at)
        else:  # replaced (the new order carries on), pending_*, restated...
            self.counters[f"update_{event}"] += 1

    def accepted(self, placed: _Placed, at: datetime, replacement: bool) -> None:
        """Accepted once; a replacement's new terms once."""
        order = placed.order
        if placed.terms is not None and replacement:
            qty, limit, stop = placed.terms
            placed.terms = None
            placed.quantity = placed.quantity if qty is None else qty
            status = OrderStatus.PARTIALLY_FILLED if placed.filled else OrderStatus.ACCEPTED
            self._emit(OrderEvent(order.id, status, at, quantity=qty, limit=limit, stop=stop))
        elif not placed.accepted and not placed.closed:
            placed.accepted = True
            self._emit(OrderEvent(order.id, OrderStatus.ACCEPTED, at))

    def close(self, placed: _Placed, event: str, at: datetime) -> None:
        """Cancelled, expired or rejected, told once."""
        if placed.closed:
            self.counters["duplicate_close"] += 1
            return
        placed.closed = True
        reason = f"alpaca: {event}"
        self._emit(OrderEvent(placed.order.id, _CLOSED[event], at, reason=reason))

    def adopt(self, chain: list[Json], prefix: str) -> None:
        """A resumed run's order (its venue orders, first to current) becomes ours."""
        order, ordered = reconcile.adopted_order(chain, prefix)
        if order.id in self._by_client_id:
            return
        placed = _Placed(order, order.id, order.quantity)
        for venue in ordered:
            self._by_client_id[venue["client_order_id"]] = placed
            self._by_venue[str(venue["id"])] = placed
        self._venue_id[order.id] = str(ordered[-1]["id"])
        placed.at = when(ordered[0]["submitted_at"])
        self.counters["adopted"] += 1
        if self._adopter is not None:
            self._adopter(order)

    def fill(
        self, placed: _Placed, key: tuple[str, str], qty: int, price: Decimal, at: datetime
    ) -> bool:
        """Apply one execution once (``key``: reconcile.fill_key); False when it was."""
        if key in self._applied:  # heard and read, or read twice: one fill
            self.counters["fill_already_applied"] += 1
            return False
        self._applied.add(key)
        if not placed.accepted:
            self.accepted(placed, at, replacement=False)
        order = placed.order
        placed.filled += qty
        placed.value += price * qty
        total = self.commission.order_commission(placed.filled, placed.value)
        fee, placed.charged = total - placed.charged, total
        fill = Fill(order.id, at, order.symbol, order.side, qty, float(price), float(fee))
        done = placed.filled >= placed.quantity
        placed.closed = placed.closed or done
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        self._emit(OrderEvent(order.id, status, at, fill=fill))
        return True

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
