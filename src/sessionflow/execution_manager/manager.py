"""The ExecutionManager: owns orders (validation, risk limits, ids, states) and sends the
accepted ones to its broker.

Nothing here knows whether the broker is the backtest's or a live venue's: orders are
checked the same way and change state only from the broker's order events. A refused
order is not an exception: it is recorded with status ``rejected`` and a reason,
counted, and reported to listeners like any other state change.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from sessionflow.corporate_actions.adjust import Action
from sessionflow.events import BarSliceEvent, BatchEvent, SessionEndEvent, SessionStartEvent
from sessionflow.execution_manager.backtest_broker import BacktestBroker, bar_finder
from sessionflow.execution_manager.bounds import BuyingPowerBounds
from sessionflow.execution_manager.broker import Broker
from sessionflow.execution_manager.orders import (
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    money,
)
from sessionflow.execution_manager.risk import PreTradeRisk
from sessionflow.models import SymbolError, normalize_symbol
from sessionflow.time_provider import Clock

if TYPE_CHECKING:  # the portfolio imports this package's orders
    from sessionflow.portfolio import Portfolio

log = logging.getLogger(__name__)
_ZERO = Decimal(0)
# a side and a time in force by their names: a dict lookup costs less than an Enum call
_SIDE = {s.value: s for s in Side}
_TIF = {t.value: t for t in TimeInForce}
# members read on every order: a module name costs less than an Enum class attribute
_BUY, _SELL = Side.BUY, Side.SELL
_ACCEPTED, _REJECTED, _EXPIRED = OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.EXPIRED

OrderListener = Callable[[Order, OrderEvent], None]
ActionListener = Callable[[Action, datetime], None]
DEFAULT_MAX_QUANTITY = 1_000_000


@dataclass(frozen=True)
class RiskLimits:
    """``max_quantity``: the largest order accepted; ``allow_short``: sell beyond the
    position (a margin account only: a cash account never shorts)."""

    max_quantity: int = DEFAULT_MAX_QUANTITY
    allow_short: bool = False


class ExecutionManager:
    def __init__(
        self,
        broker: Broker,
        portfolio: Portfolio,
        symbols: Collection[str],
        clock: Clock,
        price: Callable[[str], float | None],
        limits: RiskLimits | None = None,
        last_close: datetime | None = None,
        actions: Callable[[], Sequence[Action]] = list,
        risk: PreTradeRisk | None = None,
        prices: Callable[[Sequence[str]], Sequence[float | None]] | None = None,
    ) -> None:
        self.broker = broker
        self.portfolio = portfolio
        self._symbols = frozenset(symbols)
        self._plain = plain_symbols(self._symbols)
        self._row = {s: i for i, s in enumerate(sorted(self._symbols))}
        self._by_row = portfolio.universe == tuple(self._row)  # marks by the slice's rows
        self._actions = actions  # those applied to history as the current session began
        self._action_listeners: list[ActionListener] = []
        self._last_session: date | None = None
        self._clock = clock
        self._price = price
        # ``price`` of many symbols at once (submit_many): one read of the session data
        self._prices = prices or (lambda syms: [price(s) for s in syms])
        self.limits = limits or RiskLimits()
        self.risk = risk or PreTradeRisk()  # order value, position value, rate, daily loss
        self.last_close = last_close  # backtest: no order is accepted from then on
        self._session_close: datetime | None = None  # of the session under way (see submit)
        self._expiring: list[tuple[Order, OrderEvent]] = []  # see _on_event
        self.orders: list[Order] = []  # every order, in submission order
        self._open: dict[str, Order] = {}  # the open ones, in submission order
        self._open_of: dict[str, dict[str, Order]] = {}  # the same, by symbol
        # buying power the open orders hold, summed once per instant and then kept up as
        # orders are added (re-summing it for each order made a burst of orders quadratic):
        # (clock time, state version, total); any other order or market event ends it
        self._version = 0
        self._held_power: tuple[datetime, int, Decimal] | None = None
        self._by_id: dict[str, Order] = {}
        self._by_client: dict[str, Order] = {}
        self._listeners: list[OrderListener] = []
        self.rejections: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.bounds: BuyingPowerBounds | None = None  # set by a sharded run to track them
        broker.on_order_event(self._on_event)
        if isinstance(broker, BacktestBroker):
            broker.funds = self  # a buy that fills asks what the account may spend
        adopt_into = getattr(broker, "adopt_into", None)  # a live broker resuming a run
        if adopt_into is not None:
            adopt_into(self.adopt)

    def on_update(self, listener: OrderListener) -> None:
        """Call ``listener(order, event)`` after every state change, in order."""
        self._listeners.append(listener)

    def on_action(self, listener: ActionListener) -> None:
        """Call ``listener(action, time)`` when a split or dividend takes effect."""
        self._action_listeners.append(listener)

    def on_market(self, event: BatchEvent) -> None:
        """Steps 1 and 2 of an instant, before any consumer sees it: the broker matches
        working orders against the bars that just arrived, the portfolio books the fills
        (through the order events) and marks its positions at the new closes."""
        self._version += 1  # prices move: the held buying power is summed anew
        if isinstance(event, SessionStartEvent):
            self._session_close = event.close
            self._begin_session(event)
        self.broker.on_market(event)
        if isinstance(event, SessionEndEvent):
            self._session_close = None
            due, self._expiring = self._expiring, []
            for order, expired in due:
                self._apply(order, expired)
        if isinstance(event, BarSliceEvent) and not event.corrected:
            if event.rows is not None and self._by_row:
                self.portfolio.mark_rows(event.rows, event.bars.close)
            elif held := self.portfolio.held:
                find = bar_finder(event, self._row)
                close = event.bars.close
                for sym in held:
                    i = find(sym)
                    if i >= 0:
                        self.portfolio.mark(sym, float(close[i]))
        self._version += 1
        self._track()

    def free_buying_power(self) -> Decimal:
        """Buying power less what the open orders that add exposure would use."""
        return self.portfolio.buying_power - self._committed(None)

    def cash_for_buys(self) -> Decimal | None:
        """A cash account spends only its cash; a margin account may borrow (its debit is
        a loan, limited at submit by Reg T buying power)."""
        return self.portfolio.cash if self.portfolio.account == "cash" else None

    def funds_checked(self, headroom: Decimal) -> None:
        """The broker's fill-time cash decision (< 0: the fill was cut, the rest cancelled)."""
        if headroom < 0:
            self.rejections["insufficient_cash_at_fill"] += 1
        if self.bounds is not None:
            self.bounds.check(headroom)

    def _track(self) -> None:
        if self.bounds is not None:
            power = self.portfolio.buying_power
            self.bounds.see(power - self._committed(None), power)

    def _begin_session(self, event: SessionStartEvent) -> None:
        """Splits and dividends effective since the last session played change positions
        and working orders at the open of their ex-date, before any bar."""
        prior = self._last_session
        self._last_session = event.session
        for a in sorted(self._actions(), key=lambda a: (a.ex_date, a.symbol)):
            if a.ex_date > event.session or (prior is None and a.ex_date != event.session):
                continue
            if prior is not None and a.ex_date <= prior:
                continue
            if a.split != 1.0:
                self.portfolio.apply_split(a.symbol, a.split)
                self.broker.apply_action(a, event.time)
            if a.dividend:
                self.portfolio.apply_dividend(a.symbol, a.dividend)
            for listener in self._action_listeners:
                listener(a, event.time)
        self.risk.begin_session(self.portfolio.equity)

    def adopt(self, order: Order) -> None:
        """An order a killed run placed, which this run continues (the live broker's
        reconciliation): known from now on like one of this run's, its events applied
        as they come; a submit with its client id returns it instead of a second order."""
        if order.id in self._by_id:
            return
        self._version += 1
        self.orders.append(order)
        self._by_id[order.id] = order
        self._by_client.setdefault(order.client_order_id, order)
        if order.is_open:
            self._open[order.id] = order
            self._open_of.setdefault(order.symbol, {})[order.id] = order
        self.counters["adopted"] += 1

    def get(self, order_id: str) -> Order | None:
        return self._by_id.get(order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (of ``symbol``), in submission order; from an index, not a scan of
        every order ever placed (a scan per submission made long runs quadratic)."""
        if symbol is None:
            return list(self._open.values())
        return list(self._open_of.get(symbol, {}).values())

    def submit(
        self,
        symbol: str,
        side: Side | str,
        quantity: int,
        *,
        limit: float | None = None,
        stop: float | None = None,
        tif: TimeInForce | str = "day",
        client_order_id: str | None = None,
    ) -> Order:
        """A new order; the same ``client_order_id`` again returns the first order unchanged.

        The hot path of a strategy placing thousands of orders: plain ints and floats are
        checked first (Decimal only for buying power), and the reference price is looked
        up once per order."""
        return self._submit(symbol, side, quantity, limit, stop, tif, client_order_id,
                            self._clock.now(), self._price)  # fmt: skip

    def submit_many(
        self,
        symbols: Sequence[str],
        side: Side | str | Sequence[Side | str],
        quantity: int | Sequence[int],
        *,
        tif: TimeInForce | str = "day",
    ) -> list[Order]:
        """Market orders of one instant as columns: ``symbols[i]``, ``side`` (one for all
        or one each), ``quantity`` (the same). The same orders, ids, checks, states and
        events, in the same order, as :meth:`submit` called for each in turn (a refused
        one comes back rejected with its reason); cheaper, because the clock and every
        reference price are read once for all of them instead of once per order."""
        n = len(symbols)
        sides = [side] * n if isinstance(side, (Side, str)) else _column(side)
        qtys = _column(quantity) if isinstance(quantity, Sequence | np.ndarray) else [quantity] * n
        if len(sides) != n or len(qtys) != n:
            raise ValueError(
                f"submit_many: {n} symbols, {len(sides)} sides, {len(qtys)} quantities"
            )
        names = [_spelled_or_str(s, self._plain) for s in symbols]
        known = [s for s in names if s in self._symbols]
        last = dict(zip(known, self._prices(known), strict=True))
        now = self._clock.now()
        lane = self._plain_batch(names, sides, qtys, tif, now, last)
        if lane is not None:
            return lane
        return [
            self._submit(sym, sd, q, None, None, tif, None, now, last.get)
            for sym, sd, q in zip(names, sides, qtys, strict=True)
        ]

    def _plain_batch(
        self,
        names: list[str],
        sides: list[Any],
        qtys: list[Any],
        tif: TimeInForce | str,
        now: datetime,
        last: dict[str, float | None],
    ) -> list[Order] | None:
        """:meth:`submit_many`'s orders when every one of them passes, checked together;
        None (nothing done) when any might be refused or expire, or a rule applies that
        only the one-at-a-time checks know (risk limits, sharded bounds, a live venue):
        then :meth:`_submit` checks each in turn, rejections and all.

        Why together gives the same answer: the checks that can refuse a market order of
        a known symbol with a good quantity are the short sale (each symbol at most once
        in the batch, so its own held and pending shares decide it) and buying power,
        which :meth:`_submit` compares for order k as ``growth_k * ref_k`` plus what the
        open orders hold, the batch's earlier ones included; buying power does not move
        while orders are placed, and what they hold only grows, so if the largest of
        those sums fits, every one does."""
        tif_of = tif if tif.__class__ is TimeInForce else _TIF.get(str(tif))
        closed, top = self._session_close, self.limits.max_quantity
        if (
            tif_of is None
            or self.risk.active
            or self.bounds is not None
            or self.broker.__class__ is not BacktestBroker
            or (self.last_close is not None and now >= self.last_close)
            or (tif_of is TimeInForce.DAY and closed is not None and now >= closed)
            or len(set(names)) != len(names)
        ):
            return None
        pf = self.portfolio
        short_ok = self.limits.allow_short and pf.account == "margin"
        plan: list[tuple[str, Side, int]] = []
        held_total = self._committed(None)
        worst = _ZERO
        for sym, sd, q in zip(names, sides, qtys, strict=True):
            side = sd if sd.__class__ is Side else _SIDE.get(sd) if sd.__class__ is str else None
            ref = last.get(sym)
            if side is None or q.__class__ is not int or not 0 < q <= top or ref is None:
                return None
            held = pf.quantity(sym)
            pending = self._pending(sym)
            after = held + pending + (q if side is _BUY else -q)
            if after < 0 and not short_ok:
                return None
            growth = max(0, abs(after) - abs(held + pending))
            price = money(ref)
            if growth:
                worst = max(worst, held_total + growth * price)
            if (side is _BUY and held >= 0) or (side is _SELL and held <= 0):
                held_total += q * price  # what _holds counts for it once it is open
            plan.append((sym, side, q))
        if worst > pf.buying_power:
            return None
        out = []
        for sym, side, q in plan:
            oid = f"o-{len(self.orders) + 1}"
            order = Order(oid, oid, sym, side, q, OrderType.MARKET, tif_of, now, updated_at=now)
            self._enter(order)
            self.broker.submit(order, now)
            out.append(order)
        self._held_power = None  # summed anew by the next order
        return out

    def _submit(
        self,
        symbol: str,
        side: Side | str,
        quantity: int,
        limit: float | None,
        stop: float | None,
        tif: TimeInForce | str,
        client_order_id: str | None,
        now: datetime,
        price: Callable[[str], float | None],
    ) -> Order:
        """:meth:`submit` at ``now``, ``price`` giving a symbol's latest close."""
        if client_order_id is not None and client_order_id in self._by_client:
            self.counters["duplicate_client_order_id"] += 1
            return self._by_client[client_order_id]
        oid = f"o-{len(self.orders) + 1}"
        sym = _spelled_or_str(symbol, self._plain)
        order = Order(
            oid,
            client_order_id or oid,
            sym,
            side if side.__class__ is Side else _SIDE.get(str(side)) or Side(side),
            quantity,
            OrderType.from_prices(limit, stop),
            TimeInForce.DAY,
            now,
            limit,
            stop,
            updated_at=now,
        )
        self._enter(order)
        checked = self._check(order, tif, now, price)
        if not isinstance(checked, Decimal):
            self._reject(order, *checked, now)
            return order
        order.tif = tif if tif.__class__ is TimeInForce else _TIF.get(str(tif)) or TimeInForce(tif)
        closed = self._session_close
        if order.tif is TimeInForce.DAY and closed is not None and now >= closed:
            # decided on the session's last bar or window (live: just after the close)
            why = "day order placed at the close"
            self._apply(order, OrderEvent(order.id, OrderStatus.EXPIRED, now, reason=why))
            return order
        version, held = self._version, self._held_power
        self._held_power = None  # an order placed while this one is sent sums anew
        self.broker.submit(order, now)
        kept = held is not None and held[:2] == (now, version) == (now, self._version)
        if kept and held is not None and self._held_power is None and order.id in self._open:
            self._held_power = (now, version, held[2] + self._holds(order, checked))
        return order

    def _enter(self, order: Order) -> None:
        """A new order of this run, open until its first event says otherwise."""
        oid = order.id
        self.orders.append(order)
        self._open[oid] = order
        self._open_of.setdefault(order.symbol, {})[oid] = order
        self._by_id[oid] = order
        self._by_client[order.client_order_id] = order

    def _pending(self, symbol: str, skip: Order | None = None) -> int:
        """What the symbol's open orders, ``skip`` aside, would still buy (+) or sell (-)."""
        pending = 0
        for o in (self._open_of.get(symbol) or {}).values():
            if o is not skip:
                left = o.quantity - o.filled_quantity
                pending += left if o.side is _BUY else -left
        return pending

    def cancel(self, order_id: str) -> Order | None:
        """Cancel an open order (the broker confirms); None for an unknown id."""
        order = self._by_id.get(order_id)
        if order is None:
            log.warning("cancel %s: no such order", order_id)
            return None
        if order.is_open:
            self.broker.cancel(order_id, self._clock.now(), "cancelled by the strategy")
        return order

    def replace(
        self,
        order_id: str,
        quantity: int | None = None,
        limit: float | None = None,
        stop: float | None = None,
    ) -> Order | None:
        """New terms for an open order (same id); refused terms leave it as it was."""
        order = self._by_id.get(order_id)
        if order is None or not order.is_open:
            log.warning("replace %s: no such open order", order_id)
            self.counters["replace_refused"] += 1
            return order
        problem = _replace_problem(order, quantity, limit, stop, self.limits.max_quantity)
        if problem is None:  # the new terms must fit the buying power as a new order would
            terms = {k: v for k, v in (("quantity", quantity), ("limit", limit), ("stop", stop))
                     if v is not None}  # fmt: skip
            proposed = dataclasses.replace(order, **terms)  # type: ignore[arg-type]
            ref = self._reference_price(proposed)
            found = None if ref is None else self._exposure_problem(proposed, ref, order)
            problem = None if found is None else found[1]
        if problem is not None:
            log.warning("replace %s refused: %s", order_id, problem)
            self.counters["replace_refused"] += 1
            return order
        self.broker.replace(order_id, self._clock.now(), quantity, limit, stop)
        return order

    def cancel_all(self, reason: str) -> None:
        now = self._clock.now()
        for order in self.open_orders():
            self.broker.cancel(order.id, now, reason)

    def _reject(self, order: Order, reason: RejectReason, detail: str, now: datetime) -> None:
        self.rejections[reason.value] += 1
        log.info("order %s %s rejected: %s", order.id, order.symbol, detail)
        event = OrderEvent(order.id, OrderStatus.REJECTED, now, reason=f"{reason.value}: {detail}")
        self._apply(order, event)

    def _check(
        self,
        order: Order,
        tif: TimeInForce | str,
        now: datetime,
        price: Callable[[str], float | None],
    ) -> Decimal | tuple[RejectReason, str]:
        """The order's reference price when it passes, else why it is refused."""
        qty, sym = order.quantity, order.symbol
        if self.last_close is not None and now >= self.last_close:
            return RejectReason.AFTER_LAST_SESSION, f"the last session closed at {self.last_close}"
        if sym not in self._symbols:
            return RejectReason.UNKNOWN_SYMBOL, f"{sym!r} is not one of this system's symbols"
        if qty.__class__ is not int and (
            isinstance(qty, bool) or not isinstance(qty, numbers.Integral)
        ):
            return RejectReason.BAD_QUANTITY, f"quantity {qty!r} is not a positive integer"
        if qty <= 0:
            return RejectReason.BAD_QUANTITY, f"quantity {qty!r} is not a positive integer"
        if qty > self.limits.max_quantity:
            return (
                RejectReason.QUANTITY_ABOVE_MAXIMUM,
                f"quantity {qty} above the maximum {self.limits.max_quantity}",
            )
        for name, p in (("limit", order.limit), ("stop", order.stop)):
            if p is not None and not _good_price(p):
                return RejectReason.BAD_PRICE, f"{name} price {p!r} is not a number > 0"
        if tif not in ("day", "gtc", TimeInForce.DAY, TimeInForce.GTC):
            return RejectReason.BAD_TIME_IN_FORCE, f"time in force {tif!r}: use day or gtc"
        ref = self._reference_price(order, price)
        if ref is None:
            return RejectReason.UNTRADED_SYMBOL, f"{sym} has no price yet (no bar, no history)"
        found = self._exposure_problem(order, ref)
        if found is None and self.risk.active:  # last: a refused order is not counted sent
            before = self.portfolio.quantity(sym) + self._pending(sym, skip=order)
            found = self.risk.check(order, ref, before, self.portfolio.equity, now)
        return found or ref

    def _reference_price(
        self, order: Order, price: Callable[[str], float | None] | None = None
    ) -> Decimal | None:
        """What the order is priced at for buying power: its limit, its stop, else the
        latest close (None when the symbol has no price at all); ``price``: where the
        latest close is read (the one read of a whole burst of orders), else here."""
        given = order.limit if order.limit is not None else order.stop
        if given is not None:
            return money(given)
        last = (price or self._price)(order.symbol)
        return None if last is None else money(last)

    def _exposure_problem(
        self, order: Order, ref: Decimal, replacing: Order | None = None
    ) -> tuple[RejectReason, str] | None:
        """Shorting and buying power for ``order`` beside the other open orders
        (``replacing``: the open order whose new terms ``order`` carries)."""
        pf = self.portfolio
        held = pf.quantity(order.symbol)
        skip = replacing or order
        pending = self._pending(order.symbol, skip)
        after = held + pending + (order.quantity if order.side is Side.BUY else -order.quantity)
        short_ok = self.limits.allow_short and pf.account == "margin"
        if after < 0 and not short_ok:
            return (
                RejectReason.SHORT_SALE,
                f"sell {order.quantity} {order.symbol} with {held} held and {-min(pending, 0)} "
                "already for sale; shorting is off",
            )
        growth = max(0, abs(after) - abs(held + pending))  # shares that add exposure
        if not growth:
            return None
        need = growth * ref + self._committed(skip)
        if self.bounds is not None:
            self.bounds.check(pf.buying_power - need)
        if need > pf.buying_power:
            return (
                RejectReason.INSUFFICIENT_BUYING_POWER,
                f"{order.quantity} {order.symbol} at ~{ref} needs {need:.2f} with open orders, "
                f"buying power {pf.buying_power:.2f}",
            )
        return None

    def _committed(self, new: Order | None) -> Decimal:
        """Buying power the other open orders that add exposure would use if they filled.

        A new order (not yet sent) is checked against the total kept for this instant;
        ``None``: all of them."""
        now = new.submitted_at if new is not None and not new.events else None
        held = self._held_power
        if now is not None and held is not None and held[:2] == (now, self._version):
            return held[2]
        total = sum((self._holds(o) for o in self._open.values() if o is not new), Decimal(0))
        if now is not None:
            self._held_power = (now, self._version, total)
        return total

    def _holds(self, o: Order, ref: Decimal | None = None) -> Decimal:
        """The buying power open order ``o`` would use if it filled (0: it reduces exposure);
        ``ref``: its reference price when the caller has just looked it up."""
        held = self.portfolio.quantity(o.symbol)
        if (o.side is Side.BUY and held >= 0) or (o.side is Side.SELL and held <= 0):
            if ref is None:
                ref = self._reference_price(o)
            return o.remaining * (ref or _ZERO)
        return _ZERO

    def _on_event(self, event: OrderEvent) -> None:
        order = self._by_id.get(event.order_id)
        if order is None:  # a broker reporting an order this manager never sent
            self.counters["unknown_order_event"] += 1
            log.warning("order event for unknown order %s ignored", event.order_id)
            return
        closed = self._session_close
        if event.status is _EXPIRED and closed is not None and event.time >= closed:
            # the close's expiries take effect when the session ends, after its last bar
            # and windows: a venue reports them as the last bar arrives, the backtest after
            self._expiring.append((order, event))
            return
        self._apply(order, event)

    def _apply(self, order: Order, event: OrderEvent) -> None:
        status = event.status
        if order.events or (status is not _ACCEPTED and status is not _REJECTED):
            self._version += 1  # not a new order accepted or refused: re-sum
        order.status = status
        if status.final:
            self._open.pop(order.id, None)
            self._open_of.get(order.symbol, {}).pop(order.id, None)
        order.updated_at = event.time
        fill = event.fill
        if event.reason is not None and fill is None:
            order.reason = event.reason
        if event.filled is not None:
            order.filled_quantity = event.filled
        if event.quantity is not None:
            order.quantity = event.quantity
        if event.limit is not None:
            order.limit = event.limit
        if event.stop is not None:
            order.stop = event.stop
        if fill is not None:
            self.portfolio.apply_fill(fill)  # step 2 of the instant, before any listener
            prior = order.filled_quantity
            order.filled_quantity = prior + fill.quantity
            if prior:
                avg = order.avg_fill_price or 0.0
                order.avg_fill_price = float(
                    (money(avg) * prior + money(fill.price) * fill.quantity) / order.filled_quantity
                )
            else:  # money(p) * q / q is money(p) exactly, whose float is p
                order.avg_fill_price = fill.price
        order.events.append(event)
        if self.bounds is not None:
            self._track()
        for listener in self._listeners:
            listener(order, event)


def _good_price(p: object) -> bool:
    return (
        isinstance(p, numbers.Real)
        and not isinstance(p, bool)
        and math.isfinite(float(p))
        and float(p) > 0
    )


def _replace_problem(
    order: Order, quantity: int | None, limit: float | None, stop: float | None, top: int
) -> str | None:
    if quantity is not None:
        if isinstance(quantity, bool) or not isinstance(quantity, numbers.Integral):
            return f"quantity {quantity!r} is not an integer"
        if not order.filled_quantity < quantity <= top:
            return (
                f"quantity {quantity} must be above the {order.filled_quantity} filled and <= {top}"
            )
    if limit is not None and (order.limit is None or not _good_price(limit)):
        return f"limit {limit!r}: not a number > 0, or the order has no limit"
    if stop is not None and (order.stop is None or not _good_price(stop)):
        return f"stop {stop!r}: not a number > 0, or the order has no stop"
    return None


def _column(values: Sequence[object] | np.ndarray) -> list[Any]:
    """A column as a list of Python scalars (numpy's ``tolist`` gives ints, not int64)."""
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _spelled_or_str(symbol: object, plain: frozenset[str]) -> str:
    """:func:`spelled`, or the symbol as given when it cannot be spelled (the order is
    then rejected as an unknown symbol, with the name the strategy used)."""
    try:
        return spelled(symbol, plain)
    except SymbolError:
        return str(symbol)


def plain_symbols(symbols: Collection[str]) -> frozenset[str]:
    """Those of ``symbols`` already in their one spelling (``normalize_symbol`` keeps them)."""
    out = []
    for s in symbols:
        try:
            if normalize_symbol(s) == s:
                out.append(s)
        except SymbolError:
            continue
    return frozenset(out)


def spelled(symbol: object, plain: frozenset[str]) -> str:
    """``normalize_symbol(symbol)``, without the work for a symbol in ``plain``."""
    if symbol.__class__ is str and symbol in plain:
        return symbol
    return normalize_symbol(symbol)
