"""Commission models. Each gives an order's total commission for what it has filled so
far; a fill is charged the increase, so minimums and caps apply per order across
partial fills. Amounts are Decimal, rounded half up to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from sessionflow.execution_manager.orders import money

CENT = Decimal("0.01")


class CommissionError(ValueError):
    """A commission spec that does not parse; the message shows the accepted forms."""

    FORMS = "zero, per_share:RATE[,min=M][,max=SHARE], per_order:AMOUNT, percent:PCT"


class CommissionModel(Protocol):
    def order_commission(self, quantity: int, value: Decimal) -> Decimal:
        """Total commission of an order that has filled ``quantity`` shares worth ``value``."""
        ...


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ZeroCommission:
    def order_commission(self, quantity: int, value: Decimal) -> Decimal:
        return Decimal(0)


@dataclass(frozen=True)
class PerShare:
    """``rate`` per share, at least ``minimum`` per order, at most ``max_share`` of the
    trade value (IBKR's fixed pricing: 0.005, 1.00, 1%)."""

    rate: Decimal = Decimal("0.005")
    minimum: Decimal = Decimal("1.00")
    max_share: Decimal | None = Decimal("0.01")

    def order_commission(self, quantity: int, value: Decimal) -> Decimal:
        if quantity == 0:
            return Decimal(0)
        fee = max(self.rate * quantity, self.minimum)
        if self.max_share is not None:
            fee = min(fee, self.max_share * abs(value))
        return cents(fee)


@dataclass(frozen=True)
class PerOrder:
    amount: Decimal

    def order_commission(self, quantity: int, value: Decimal) -> Decimal:
        return cents(self.amount) if quantity else Decimal(0)


@dataclass(frozen=True)
class Percentage:
    """``percent`` of the trade value (0.1 is 0.1%)."""

    percent: Decimal

    def order_commission(self, quantity: int, value: Decimal) -> Decimal:
        return cents(abs(value) * self.percent / 100)


def _number(text: str, spec: str) -> Decimal:
    try:
        x = money(float(text))
    except ValueError:
        raise CommissionError(
            f"commission {spec!r}: {text!r} is not a number (use {CommissionError.FORMS})"
        ) from None
    if not x.is_finite() or x < 0:
        raise CommissionError(
            f"commission {spec!r}: {text!r} must be a number >= 0 (use {CommissionError.FORMS})"
        )
    return x


def parse_commission(spec: str) -> CommissionModel:
    """``zero``, ``per_share:0.005,min=1,max=0.01``, ``per_order:1``, ``percent:0.1``."""
    kind, _, rest = spec.strip().partition(":")
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    kind = kind.strip().lower().replace("-", "_")
    if kind == "zero" and not parts:
        return ZeroCommission()
    if kind == "per_share" and parts:
        keys = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if len(keys) != len(parts) - 1 or set(keys) - {"min", "max"}:
            raise CommissionError(f"commission {spec!r}: use {CommissionError.FORMS}")
        top = keys.get("max")
        return PerShare(
            _number(parts[0], spec),
            _number(keys.get("min", "0"), spec),
            None if top is None or top.lower() == "none" else _number(top, spec),
        )
    if kind == "per_order" and len(parts) == 1:
        return PerOrder(_number(parts[0], spec))
    if kind == "percent" and len(parts) == 1:
        return Percentage(_number(parts[0], spec))
    raise CommissionError(f"commission {spec!r}: use {CommissionError.FORMS}")
