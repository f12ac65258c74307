"""What the local trading server says: Alpaca's order, asset and event payloads, and its errors.

Why apart from the book: these are wire shapes (field names from alpaca-py's models,
money as strings, times in RFC 3339) and the documented error answers; the book's
rules use them without caring how they are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

OPEN_STATES = frozenset(
    {"accepted", "pending_new", "new", "partially_filled", "pending_cancel", "pending_replace"}
)
SIDES = ("buy", "sell")
TYPES = ("market", "limit", "stop", "stop_limit")
ALPACA_TYPES = (*TYPES, "trailing_stop")
TIFS = ("day", "gtc", "ioc", "fok")
ALPACA_TIFS = (*TIFS, "opg", "cls")
MAX_CLIENT_ID = 128  # characters
MARKET_BUY_MARKUP = Decimal("0.04")  # "2.5% to 4% above the current market price": the strict end
SHORT_MARKUP = Decimal("0.03")  # short value: max(limit, 3% above the ask)
MIN_SHORT_EQUITY = Decimal(2000)  # margin accounts below $2,000 may not short
QTY_PLACES = Decimal("0.000000001")  # fractional quantities: up to 9 decimals
ZERO = Decimal(0)
ACTIVITY_TYPES = frozenset((
    "FILL", "TRANS", "MISC", "ACATC", "ACATS", "CSD", "CSW", "DIV", "DIVCGL", "DIVCGS",
    "DIVFEE", "DIVFT", "DIVNRA", "DIVROC", "DIVTW", "DIVTXEX", "INT", "INTNRA", "INTTW", "JNL",
    "JNLC", "JNLS", "MA", "NC", "OPASN", "OPEXP", "OPXRC", "PTC", "PTR", "REORG", "SC", "SSO",
    "SSP"))  # fmt: skip
# Alpaca's documented activity types; the local server records FILLs only
MAX_ACTIVITY_PAGE = 100  # page_size default and maximum without ``date``


class ApiError(Exception):
    """A documented refusal: HTTP status, Alpaca's error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def unprocessable(message: str) -> ApiError:
    return ApiError(422, 40010001, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, 40310000, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, 40410000, message)


def stamp(ts: datetime | None) -> str | None:
    """RFC 3339 in UTC with microseconds, as Alpaca writes times."""
    return None if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def num(value: Decimal | None) -> str | None:
    """A decimal as Alpaca writes it: a string, no exponent, no trailing zeros."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def decimal_param(params: dict[str, Any], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise unprocessable(f"invalid {name}: {raw!r}") from None
    if not value.is_finite():
        raise unprocessable(f"invalid {name}: {raw!r}")
    return value


def check_price(name: str, price: Decimal) -> None:
    """Sub-penny rule: at most 2 decimals at $1.00 and above, 4 below."""
    if price <= 0:
        raise unprocessable(f"{name} must be > 0")
    places = 2 if price >= 1 else 4
    if price != price.quantize(Decimal(1).scaleb(-places), ROUND_DOWN):
        raise unprocessable("sub-penny increment does not fulfill minimum pricing criteria")


@dataclass
class Asset:
    symbol: str
    id: str
    tradable: bool = True
    status: str = "active"  # "inactive": halted or delisted
    shortable: bool = True
    easy_to_borrow: bool = True
    fractionable: bool = True
    marginable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": "us_equity",
            "exchange": "NASDAQ",
            "symbol": self.symbol,
            "name": self.symbol,
            "status": self.status,
            "tradable": self.tradable,
            "marginable": self.marginable,
            "shortable": self.shortable,
            "easy_to_borrow": self.easy_to_borrow,
            "fractionable": self.fractionable,
        }


@dataclass
class Order:
    id: str
    client_order_id: str
    asset: Asset
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit: Decimal | None
    stop: Decimal | None
    status: str
    submitted_at: datetime
    updated_at: datetime
    session_close: datetime | None  # a day order expires here
    routes_at: datetime  # "accepted" until then (outside the session), then "new"
    filled_qty: Decimal = ZERO
    filled_value: Decimal = ZERO
    triggered: bool = False
    times: dict[str, datetime] = field(default_factory=dict)  # filled, expired, canceled...
    replaced_by: str | None = None
    replaces: str | None = None

    @property
    def remaining(self) -> Decimal:
        return (self.qty or ZERO) - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    @property
    def avg_price(self) -> Decimal | None:
        if self.filled_qty == 0:
            return None
        return (self.filled_value / self.filled_qty).quantize(Decimal("0.0001"))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": stamp(self.submitted_at),
            "updated_at": stamp(self.updated_at),
            "submitted_at": stamp(self.submitted_at),
            "filled_at": stamp(self.times.get("filled")),
            "expired_at": stamp(self.times.get("expired")),
            "expires_at": stamp(self.session_close),
            "canceled_at": stamp(self.times.get("canceled")),
            "failed_at": stamp(self.times.get("failed")),
            "replaced_at": stamp(self.times.get("replaced")),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": self.asset.id,
            "symbol": self.asset.symbol,
            "asset_class": "us_equity",
            "notional": num(self.notional),
            "qty": None if self.notional is not None else num(self.qty),
            "filled_qty": num(self.filled_qty),
            "filled_avg_price": num(self.avg_price),
            "order_class": "simple",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": num(self.limit),
            "stop_price": num(self.stop),
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass(frozen=True)
class TradeEvent:
    """One ``trade_updates`` message's ``data``."""

    event: str
    order: dict[str, Any]
    timestamp: datetime
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None
    execution_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event,
            "timestamp": stamp(self.timestamp),
            "order": self.order,
        }
        if self.execution_id is not None:
            out.update(
                execution_id=self.execution_id,
                price=num(self.price),
                qty=num(self.qty),
                position_qty=num(self.position_qty),
            )
        return out


@dataclass
class Position:
    qty: Decimal = ZERO
    cost: Decimal = ZERO  # signed: qty x average entry price


__all__ = ["ApiError", "Asset", "Order", "Position", "TradeEvent"]
