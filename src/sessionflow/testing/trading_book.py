"""A local Alpaca trading account: orders and their states, account, positions.

Why apart from the server: these are the documented rules (statuses and their
transitions, the 403/404/422 answers, buying power, fractional and short-sale
rules, day orders expiring at the real close); the server only carries them over
HTTP and the websocket. Every call takes ``now`` (the replayed session's time, not
the wall clock) and runs under the server's lock, so a replay is deterministic.

Sources: https://docs.alpaca.markets/docs/orders-at-alpaca (statuses, buying power,
time in force, sub-penny prices, client order ids), .../docs/fractional-trading,
.../docs/margin-and-short-selling, .../reference/postorder and the alpaca-py models
(field names). The choices where the documentation is silent are listed in
docs/live.md ("Trading server").
"""

from __future__ import annotations

import random
import uuid
from bisect import insort
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sessionflow.models import Bar
from sessionflow.testing.trading_matcher import FillModelMatcher, Matcher, WorkingOrder
from sessionflow.testing.trading_models import (
    ALPACA_TIFS,
    ALPACA_TYPES,
    MARKET_BUY_MARKUP,
    MAX_CLIENT_ID,
    MIN_SHORT_EQUITY,
    QTY_PLACES,
    SHORT_MARKUP,
    SIDES,
    TIFS,
    TYPES,
    ZERO,
    Asset,
    Order,
    Position,
    TradeEvent,
    check_price,
    decimal_param,
    forbidden,
    not_found,
    num,
    stamp,
    unprocessable,
)
from sessionflow.time_provider.calendar import ExchangeCalendar, SessionInfo


class TradingBook:
    """One account's orders, positions and cash, moved by ``now`` and stored bars."""

    def __init__(
        self,
        cash: Decimal | float | str = 100_000,
        *,
        multiplier: int = 2,
        shorting: bool = True,
        matcher: Matcher | None = None,
        calendar: ExchangeCalendar | None = None,
        fill_grace_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        if multiplier not in (1, 2):
            raise ValueError(f"multiplier must be 1 (cash) or 2 (Reg T margin), got {multiplier}")
        self.cash = Decimal(str(cash))
        self.multiplier = multiplier
        self.shorting = shorting
        self.matcher: Matcher = matcher or FillModelMatcher()
        self.calendar = calendar or ExchangeCalendar()
        self.fill_grace_s = fill_grace_s
        self._random = random.Random(seed)
        self.account_id = self.new_id()
        self.assets: dict[str, Asset] = {}
        self.orders: dict[str, Order] = {}  # by id, in submission order
        self._live: dict[str, Order] = {}  # those that may still be open, same order
        self.by_client_id: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        self.last_price: dict[str, Decimal] = {}
        self._bars: list[tuple[datetime, str, Bar]] = []
        self._next_bar = 0
        self._taken: dict[tuple[str, datetime], Decimal] = {}  # filled per bar
        self.activities: list[dict[str, Any]] = []  # FILL activities, in execution order

    def new_id(self) -> str:
        """Order and asset ids: UUID4s from a seeded generator, so a replay repeats them."""
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def add_bars(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            self.asset(bar.symbol, create=True)
            insort(self._bars, (bar.ts, bar.symbol, bar), key=lambda row: row[:2])

    def asset(self, symbol: str, *, create: bool = False) -> Asset:
        found = self.assets.get(symbol)
        if found is None:
            if not create:
                raise not_found(f"asset not found for {symbol}")
            found = self.assets[symbol] = Asset(symbol, self.new_id())
        return found

    def _session_for(self, now: datetime) -> SessionInfo | None:
        """The session an order placed at ``now`` belongs to: today's until its close,
        else the next one."""
        info = self.calendar.session_of(now)
        if info is not None and now < info.close:
            return info
        return self.calendar.next_session(self.calendar.local(now).date())

    def price_of(self, symbol: str) -> Decimal:
        """The latest price known at ``now`` (the last processed close); before any bar
        has closed, the first stored bar's open (used only to size buying power)."""
        if symbol in self.last_price:
            return self.last_price[symbol]
        for _, sym, bar in self._bars:
            if sym == symbol:
                return Decimal(str(bar.open))
        raise forbidden(f"no price available for {symbol}")

    def market_values(self) -> tuple[Decimal, Decimal]:
        long = short = ZERO
        for symbol, pos in self.positions.items():
            value = pos.qty * self.price_of(symbol)
            if pos.qty > 0:
                long += value
            else:
                short += value
        return long, short

    def equity(self) -> Decimal:
        long, short = self.market_values()
        return self.cash + long + short

    def buying_power(self) -> Decimal:
        """Alpaca's: ``cash`` for a cash account; ``max(equity - initial margin, 0) x 2``
        under Reg T (initial margin 50% of long and short market value)."""
        if self.multiplier == 1:
            return max(self.cash, ZERO)
        long, short = self.market_values()
        initial = (long - short) / 2
        return max(self.equity() - initial, ZERO) * 2

    def shorting_enabled(self) -> bool:
        return self.shorting and self.multiplier > 1 and self.equity() >= MIN_SHORT_EQUITY

    def order(self, order_id: str) -> Order:
        found = self.orders.get(order_id)
        if found is None:
            raise not_found("order not found")
        return found

    def order_by_client_id(self, client_order_id: str) -> Order:
        found = self.by_client_id.get(client_order_id)
        if found is None:
            raise not_found("order not found")
        return found

    def submit(self, params: dict[str, Any], now: datetime) -> tuple[Order, list[TradeEvent]]:
        """POST /v2/orders: the order, as accepted, or an ``ApiError``."""
        order = self._build(params, now, replacing=None)
        return order, self._accept(order, now)

    def _build(self, params: dict[str, Any], now: datetime, replacing: Order | None) -> Order:
        """Check the parameters in Alpaca's order (422s, then 403s) and build the order."""
        symbol = str(params.get("symbol") or "").strip().upper()
        if not symbol:
            raise unprocessable("symbol is required")
        side, otype = params.get("side"), params.get("type") or params.get("order_type")
        tif = params.get("time_in_force")
        if side not in SIDES:
            raise unprocessable(f"invalid side: {side!r}")
        if otype not in ALPACA_TYPES:
            raise unprocessable(f"invalid order type: {otype!r}")
        if tif not in ALPACA_TIFS:
            raise unprocessable(f"invalid time_in_force: {tif!r}")
        if otype not in TYPES or tif not in TIFS:
            raise unprocessable(f"{otype}/{tif} orders are not supported by the local server")
        if (params.get("order_class") or "simple") != "simple" or params.get("extended_hours"):
            raise unprocessable(
                "only simple regular-hours orders are supported by the local server"
            )
        qty, notional = decimal_param(params, "qty"), decimal_param(params, "notional")
        if (qty is None) == (notional is None):
            raise unprocessable("qty or notional is required, not both")
        amount = qty if qty is not None else notional
        assert amount is not None
        if amount <= 0:
            raise unprocessable(f"{'qty' if qty is not None else 'notional'} must be > 0")
        limit, stop = decimal_param(params, "limit_price"), decimal_param(params, "stop_price")
        for name, price, needed in (
            ("limit_price", limit, otype in ("limit", "stop_limit")),
            ("stop_price", stop, otype in ("stop", "stop_limit")),
        ):
            if needed and price is None:
                raise unprocessable(f"{name} is required for {otype} orders")
            if not needed and price is not None:
                raise unprocessable(f"{name} is not allowed for {otype} orders")
            if price is not None:
                check_price(name, price)
        client_id = params.get("client_order_id") or self.new_id()
        if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID:
            raise unprocessable(f"client_order_id must be at most {MAX_CLIENT_ID} characters")
        if client_id in self.by_client_id:
            raise unprocessable("client_order_id must be unique")
        asset = self.asset(symbol)
        if asset.status != "active":
            raise forbidden(f"asset {symbol} is not active")
        if not asset.tradable:
            raise unprocessable(f"asset {symbol} is not tradable")
        fractional = notional is not None or qty != qty.to_integral_value()  # type: ignore[union-attr]
        if fractional:
            if not asset.fractionable:
                raise unprocessable(f"asset {symbol} is not fractionable")
            if tif != "day":
                raise unprocessable("fractional orders must be DAY orders")
            if notional is not None and otype != "market":
                raise unprocessable("notional orders must be market orders")
            if amount != amount.quantize(QTY_PLACES, ROUND_DOWN):
                raise unprocessable("qty allows at most 9 decimals")
        if notional is not None:
            check_price("notional", notional)
        session = self._session_for(now)
        if session is None:
            raise unprocessable("no trading session ahead in the calendar")
        order = Order(
            id=self.new_id(),
            client_order_id=client_id,
            asset=asset,
            side=side,
            type=otype,
            time_in_force=tif,
            qty=qty,
            notional=notional,
            limit=limit,
            stop=stop,
            status="accepted",
            submitted_at=now,
            updated_at=now,
            session_close=session.close if tif == "day" else None,
            routes_at=max(now, session.open),
        )
        self._check_funds(order, replacing)
        return order

    def _check_funds(self, order: Order, replacing: Order | None) -> None:
        """Quantity held by other open orders, no flip from long to short in one order,
        short-sale permissions, then buying power (open buys and shorts count)."""
        symbol, pos = order.asset.symbol, self.positions.get(order.asset.symbol, Position())
        others = [o for o in self.open_orders() if o is not replacing]
        want = order.qty if order.qty is not None else ZERO
        closing = (order.side == "sell") == (pos.qty > 0) and pos.qty != 0
        if closing:
            held = sum(
                (o.remaining for o in others if o.asset.symbol == symbol and o.side == order.side),
                ZERO,
            )
            available = abs(pos.qty) - held
            if want > available or order.notional is not None:
                raise forbidden(
                    f"insufficient qty available for order (requested: {num(want)},"
                    f" available: {num(max(available, ZERO))})"
                )
            return
        short = order.side == "sell"
        if short:
            if order.notional is not None or want != want.to_integral_value():
                raise forbidden("fractional orders cannot be sold short")
            if not order.asset.shortable or not order.asset.easy_to_borrow:
                raise forbidden(f"asset {symbol} cannot be sold short")
            if not self.shorting_enabled():
                raise forbidden("account is not allowed to short")
        committed = sum((self._order_value(o) for o in others), ZERO)
        if self._order_value(order) > self.buying_power() - committed:
            raise forbidden("insufficient buying power")

    def _order_value(self, order: Order) -> Decimal:
        """What an open order takes from buying power (Alpaca's calculated value); sells
        of a long position and buys to cover take nothing."""
        pos = self.positions.get(order.asset.symbol, Position())
        if (order.side == "sell" and pos.qty > 0) or (order.side == "buy" and pos.qty < 0):
            return ZERO
        if order.notional is not None:
            return order.notional - order.filled_value
        last = self.price_of(order.asset.symbol)
        if order.side == "buy":
            price = order.limit or order.stop or last * (1 + MARKET_BUY_MARKUP)
        else:
            price = max(order.limit or ZERO, last * (1 + SHORT_MARKUP))
        return price * order.remaining

    def open_orders(self) -> list[Order]:
        """The open orders in submission order, from an index pruned as orders close (a
        scan of every order on each request and bar made long runs quadratic)."""
        live = [o for o in self._live.values() if o.is_open]
        if len(live) != len(self._live):
            self._live = {o.id: o for o in live}
        return live

    def _accept(self, order: Order, now: datetime) -> list[TradeEvent]:
        self.orders[order.id] = order
        self._live[order.id] = order
        self.by_client_id[order.client_order_id] = order
        if order.routes_at > now:
            return [TradeEvent("accepted", order.to_json(), now)]
        return self._route(order, now)

    def _route(self, order: Order, at: datetime) -> list[TradeEvent]:
        order.status, order.updated_at = "new", at
        return [TradeEvent("new", order.to_json(), at)]

    def cancel(self, order_id: str, now: datetime) -> list[TradeEvent]:
        order = self.order(order_id)
        if not order.is_open:
            raise unprocessable(f'order is already in "{order.status}" state')
        return self._close(order, "canceled", now)

    def cancel_all(self, now: datetime) -> list[tuple[Order, list[TradeEvent]]]:
        return [(o, self._close(o, "canceled", now)) for o in self.open_orders()]

    def _close(self, order: Order, status: str, at: datetime) -> list[TradeEvent]:
        order.status, order.updated_at = status, at
        order.times[status] = at
        return [TradeEvent(status, order.to_json(), at)]

    def replace(
        self, order_id: str, params: dict[str, Any], now: datetime
    ) -> tuple[Order, list[TradeEvent]]:
        """PATCH /v2/orders/{id}: a new order replaces an open one; the old one ends
        ``replaced`` and keeps what it filled."""
        old = self.order(order_id)
        if not old.is_open:
            raise unprocessable(f'order is already in "{old.status}" state')
        if old.notional is not None:
            raise unprocessable("notional orders cannot be replaced")
        merged = {
            "symbol": old.asset.symbol,
            "side": old.side,
            "type": old.type,
            "time_in_force": params.get("time_in_force") or old.time_in_force,
            "qty": params.get("qty") or num(old.remaining),
            "limit_price": params.get("limit_price") or num(old.limit),
            "stop_price": params.get("stop_price") or num(old.stop),
            "client_order_id": params.get("client_order_id"),
        }
        new = self._build(merged, now, replacing=old)
        new.replaces, old.replaced_by = old.id, new.id
        events = self._close(old, "replaced", now)
        return new, events + self._accept(new, now)

    def advance(self, now: datetime) -> list[TradeEvent]:
        """Everything due by ``now``: bars that have closed (matched in time order),
        queued orders routed at the open, day orders expired at the close."""
        events: list[TradeEvent] = []
        while self._next_bar < len(self._bars):
            ts, symbol, bar = self._bars[self._next_bar]
            if bar.available_at > now:
                break
            self._next_bar += 1
            events += self._boundaries(ts)
            events += self._match(bar)
            self.last_price[symbol] = Decimal(str(bar.close))
        return events + self._boundaries(now)

    def _boundaries(self, t: datetime) -> list[TradeEvent]:
        events: list[TradeEvent] = []
        for order in self.open_orders():
            if order.is_open and order.session_close is not None and order.session_close <= t:
                events += self._close(order, "expired", order.session_close)
            elif order.status == "accepted" and order.routes_at <= t:
                events += self._route(order, order.routes_at)
        return events

    def _match(self, bar: Bar) -> list[TradeEvent]:
        events: list[TradeEvent] = []
        key = (bar.symbol, bar.ts)
        for order in self.open_orders():
            if not self._eligible(order, bar):
                continue
            qty = order.remaining if order.notional is None else None
            view = WorkingOrder(
                order.side,
                order.type,
                qty if qty is not None else Decimal(1),
                order.limit,
                order.stop,
                order.triggered,
            )
            ex = self.matcher.match(view, bar, self._taken.get(key, ZERO))
            order.triggered = view.triggered
            if ex is not None and order.notional is not None:
                order.qty = (order.notional / ex.price).quantize(QTY_PLACES, ROUND_DOWN)
                ex = type(ex)(order.qty, ex.price)
            if ex is not None and order.time_in_force == "fok" and ex.qty < order.remaining:
                ex = None
            if ex is not None:
                self._taken[key] = self._taken.get(key, ZERO) + ex.qty
                events += self._fill(order, ex.qty, ex.price, bar.ts)
            if order.time_in_force in ("ioc", "fok") and order.is_open:
                events += self._close(order, "canceled", bar.ts)
        return events

    def _eligible(self, order: Order, bar: Bar) -> bool:
        """Open, routed, this symbol, a bar that opened at or after the order (less the
        configured grace), and inside a day order's session."""
        if order.asset.symbol != bar.symbol or order.status not in ("new", "partially_filled"):
            return False
        if (bar.ts - order.submitted_at).total_seconds() < -self.fill_grace_s:
            return False
        return order.session_close is None or bar.ts < order.session_close

    def _fill(self, order: Order, qty: Decimal, price: Decimal, at: datetime) -> list[TradeEvent]:
        order.filled_qty += qty
        order.filled_value += qty * price
        done = order.remaining <= 0
        order.status, order.updated_at = ("filled" if done else "partially_filled"), at
        if done:
            order.times["filled"] = at
        signed = qty if order.side == "buy" else -qty
        pos = self.positions.setdefault(order.asset.symbol, Position())
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            pos.cost += signed * price
        else:  # reduce at the average entry price; any excess opens the other side
            closed = min(abs(signed), abs(pos.qty))
            pos.cost -= pos.cost / abs(pos.qty) * closed
            rest = abs(signed) - closed
            pos.cost += (rest if signed > 0 else -rest) * price
        pos.qty += signed
        self.cash -= signed * price
        if pos.qty == 0:
            del self.positions[order.asset.symbol]
        event = "fill" if done else "partial_fill"
        execution = self.new_id()
        self.activities.append(
            {
                "id": f"{at.astimezone(UTC):%Y%m%d%H%M%S%f}"[:17] + f"::{execution}",
                "activity_type": "FILL",
                "transaction_time": stamp(at),
                "type": event,
                "price": num(price),
                "qty": num(qty),
                "side": order.side,
                "symbol": order.asset.symbol,
                "leaves_qty": num(order.remaining),
                "order_id": order.id,
                "cum_qty": num(order.filled_qty),
                "order_status": order.status,
            }
        )
        return [TradeEvent(event, order.to_json(), at, price, qty, pos.qty, execution)]

    def position_json(self, symbol: str) -> dict[str, Any]:
        pos = self.positions.get(symbol)
        if pos is None:
            raise not_found("position does not exist")
        asset = self.assets[symbol]
        price = self.price_of(symbol)
        value = pos.qty * price
        avg = pos.cost / pos.qty
        pnl = value - pos.cost
        held = sum(
            (o.remaining for o in self.open_orders()
             if o.is_open and o.asset.symbol == symbol and (o.side == "sell") == (pos.qty > 0)),
            ZERO,
        )  # fmt: skip
        return {
            "asset_id": asset.id,
            "symbol": symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": asset.marginable,
            "avg_entry_price": num(avg.quantize(Decimal("0.0001"))),
            "qty": num(pos.qty),
            "qty_available": num(abs(pos.qty) - held),
            "side": "long" if pos.qty > 0 else "short",
            "market_value": num(value),
            "cost_basis": num(pos.cost),
            "unrealized_pl": num(pnl),
            "unrealized_plpc": num((pnl / abs(pos.cost)).quantize(Decimal("0.000001"))),
            "unrealized_intraday_pl": num(pnl),
            "unrealized_intraday_plpc": num((pnl / abs(pos.cost)).quantize(Decimal("0.000001"))),
            "current_price": num(price),
            "lastday_price": num(price),
            "change_today": "0",
        }

    def account_json(self) -> dict[str, Any]:
        long, short = self.market_values()
        equity = self.cash + long + short
        bp = self.buying_power()
        initial = (long - short) / 2 if self.multiplier > 1 else long
        return {
            "id": self.account_id,
            "account_number": "PA" + self.account_id.replace("-", "")[:10].upper(),
            "status": "ACTIVE",
            "crypto_status": "INACTIVE",
            "currency": "USD",
            "buying_power": num(bp),
            "regt_buying_power": num(bp),
            "non_marginable_buying_power": num(max(self.cash, ZERO)),
            "cash": num(self.cash),
            "accrued_fees": "0",
            "portfolio_value": num(equity),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "multiplier": str(self.multiplier),
            "shorting_enabled": self.shorting_enabled(),
            "equity": num(equity),
            "last_equity": num(equity),
            "long_market_value": num(long),
            "short_market_value": num(short),
            "initial_margin": num(initial),
            "maintenance_margin": num(initial),
            "last_maintenance_margin": num(initial),
            "sma": "0",
            "daytrade_count": 0,
        }


__all__ = ["TradingBook"]
