"""Slippage models: move a fill price against the trader (up to buy, down to sell)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from sessionflow.execution_manager.orders import PRICE_PLACES, Side, money


class SlippageError(ValueError):
    """A slippage spec that does not parse; the message shows the accepted forms."""

    FORMS = "zero, bps:N, ticks:N[,tick=SIZE]"


class SlippageModel(Protocol):
    def apply(self, price: Decimal, side: Side) -> Decimal: ...


def places(x: Decimal) -> Decimal:
    return x.quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class NoSlippage:
    def apply(self, price: Decimal, side: Side) -> Decimal:
        return price


@dataclass(frozen=True)
class BasisPoints:
    bps: Decimal

    def apply(self, price: Decimal, side: Side) -> Decimal:
        return places(price * (1 + side.sign * self.bps / 10_000))


@dataclass(frozen=True)
class Ticks:
    ticks: int
    tick: Decimal = Decimal("0.01")

    def apply(self, price: Decimal, side: Side) -> Decimal:
        return places(price + side.sign * self.ticks * self.tick)


def parse_slippage(spec: str) -> SlippageModel:
    """``zero``, ``bps:5`` or ``ticks:1`` (``ticks:2,tick=0.05`` for another tick size)."""
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    try:
        if kind == "zero" and not parts:
            return NoSlippage()
        if kind == "bps" and len(parts) == 1:
            bps = money(float(parts[0]))
            if bps.is_finite() and bps >= 0:
                return BasisPoints(bps)
        if kind == "ticks" and parts:
            n = int(parts[0])
            keys = dict(p.split("=", 1) for p in parts[1:])
            if n >= 0 and set(keys) <= {"tick"}:
                tick = money(float(keys.get("tick", "0.01")))
                if tick.is_finite() and tick > 0:
                    return Ticks(n, tick)
    except ValueError:
        pass
    raise SlippageError(f"slippage {spec!r}: use {SlippageError.FORMS}")
