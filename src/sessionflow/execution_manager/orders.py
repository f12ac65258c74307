"""Orders, their states and the events a broker answers with.

An ``Order`` is owned by the ExecutionManager: only it changes an order's state, from
the events its broker sends (``OrderEvent``). Money is kept as ``Decimal`` in the
portfolio; prices on orders and fills are floats a strategy reads, each exactly the
Decimal the portfolio books (fill prices are rounded to ``PRICE_PLACES`` decimals, so
a float holds them without loss).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

PRICE_PLACES = Decimal("0.000001")  # fill prices: 6 decimals, exact as floats below 1e9


def money(x: float | Decimal) -> Decimal:
    """The Decimal a float stands for (its shortest repr: 187.43 is Decimal('187.43'))."""
    if x.__class__ is float:  # the usual case first: no float() call, no isinstance
        return Decimal(repr(x))
    return x if isinstance(x, Decimal) else Decimal(repr(float(x)))


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(enum.Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"

    @classmethod
    def from_prices(cls, limit: float | None, stop: float | None) -> OrderType:
        """No price: market; a limit: limit; a stop: stop; both: stop-limit."""
        if stop is None:
            return cls.MARKET if limit is None else cls.LIMIT
        return cls.STOP if limit is None else cls.STOP_LIMIT


class TimeInForce(enum.Enum):
    DAY = "day"  # expires at the session's real close (early closes included)
    GTC = "gtc"  # good till cancelled: carried to the next session's open


class OrderStatus(enum.Enum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self._value_ in _FINAL  # by value: a member's own hash runs in Python


_FINAL = frozenset({"filled", "cancelled", "expired", "rejected"})


class RejectReason(enum.Enum):
    """Why an order was refused; the order's ``reason`` says the details."""

    UNKNOWN_SYMBOL = "unknown_symbol"
    UNTRADED_SYMBOL = "untraded_symbol"
    BAD_QUANTITY = "bad_quantity"
    QUANTITY_ABOVE_MAXIMUM = "quantity_above_maximum"
    BAD_PRICE = "bad_price"
    BAD_TIME_IN_FORCE = "bad_time_in_force"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    SHORT_SALE = "short_sale_not_allowed"
    AFTER_LAST_SESSION = "after_last_session"
    MAX_ORDER_VALUE = "max_order_value"  # the pre-trade risk limits (risk.py)
    MAX_POSITION_VALUE = "max_position_value"
    ORDER_RATE = "max_orders_per_minute"
    DAILY_LOSS_LIMIT = "daily_loss_limit"


@dataclass
class Order:
    """One order and its current state; ``events`` is its whole history, oldest first."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    type: OrderType
    tif: TimeInForce
    submitted_at: datetime
    limit: float | None = None
    stop: float | None = None
    status: OrderStatus = OrderStatus.NEW
    updated_at: datetime | None = None
    filled_quantity: int = 0
    avg_fill_price: float | None = None
    reason: str | None = None
    events: list[OrderEvent] = field(default_factory=list, repr=False)

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return not self.status.final

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "type": self.type.value,
            "tif": self.tif.value,
            "limit": self.limit,
            "stop": self.stop,
            "status": self.status.value,
            "submitted_at": self.submitted_at.isoformat(),
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "filled_quantity": self.filled_quantity,
            "avg_fill_price": self.avg_fill_price,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, init=False)
class Fill:
    """One execution: ``quantity`` shares (always > 0) at ``price``; ``side`` says which way.

    Frozen as users see it; ``__init__`` writes the slots through their descriptors
    (two per order in a backtest: the generated frozen ``__init__`` costs twice as much).
    """

    order_id: str
    time: datetime
    symbol: str
    side: Side
    quantity: int
    price: float
    commission: float

    def __init__(
        self,
        order_id: str,
        time: datetime,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        commission: float,
    ) -> None:
        _fill_order_id(self, order_id)
        _fill_time(self, time)
        _fill_symbol(self, symbol)
        _fill_side(self, side)
        _fill_quantity(self, quantity)
        _fill_price(self, price)
        _fill_commission(self, commission)

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity

    def to_dict(self) -> dict[str, object]:
        return {
            "order_id": self.order_id,
            "time": self.time.isoformat(),
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "price": self.price,
            "commission": self.commission,
        }


@dataclass(frozen=True, slots=True, init=False)
class OrderEvent:
    """What a broker reports about one order: the new ``status`` at ``time``.

    A fill event carries ``fill``; a rejection, cancellation or expiry its ``reason``.
    ``quantity``/``limit``/``stop`` on an accepted replace carry the new terms; after a
    split they and ``filled`` (the quantity filled so far) are restated in new shares.
    Frozen as users see it; ``__init__`` writes the slots directly, as ``Fill``'s does.
    """

    order_id: str
    status: OrderStatus
    time: datetime
    fill: Fill | None = None
    reason: str | None = None
    quantity: int | None = None
    limit: float | None = None
    stop: float | None = None
    filled: int | None = None

    def __init__(
        self,
        order_id: str,
        status: OrderStatus,
        time: datetime,
        fill: Fill | None = None,
        reason: str | None = None,
        quantity: int | None = None,
        limit: float | None = None,
        stop: float | None = None,
        filled: int | None = None,
    ) -> None:
        _event_order_id(self, order_id)
        _event_status(self, status)
        _event_time(self, time)
        _event_fill(self, fill)
        _event_reason(self, reason)
        _event_quantity(self, quantity)
        _event_limit(self, limit)
        _event_stop(self, stop)
        _event_filled(self, filled)


def _slot_setters(cls: type) -> list[Callable[[object, object], None]]:
    """Each field's slot writer, in field order: what a frozen class's own ``__init__``
    may call (its ``__setattr__`` refuses), for less than ``object.__setattr__`` by name."""
    return [getattr(cls, f.name).__set__ for f in fields(cls)]


(
    _fill_order_id,
    _fill_time,
    _fill_symbol,
    _fill_side,
    _fill_quantity,
    _fill_price,
    _fill_commission,
) = _slot_setters(Fill)
(
    _event_order_id,
    _event_status,
    _event_time,
    _event_fill,
    _event_reason,
    _event_quantity,
    _event_limit,
    _event_stop,
    _event_filled,
) = _slot_setters(OrderEvent)
