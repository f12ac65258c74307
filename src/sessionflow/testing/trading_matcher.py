"""How the local trading server fills a working order against one stored 1-minute bar.

Why a separate, pluggable piece: the server's protocol, states and errors are
Alpaca's, but the fill rules are the backtest's. ``Matcher`` is the seam where the
backtest's fill model plugs in, so a live run on a replayed session and the
backtest of that session fill by the same rules. ``BarMatcher`` implements the rules
of the trading API contract (docs/live.md, "Trading server"):

- market: the bar's open;
- limit buy: open at or below the limit -> the open, else low <= limit -> the limit
  (sell mirrored);
- stop buy: open at or above the stop -> the open, else high >= stop -> the stop
  (sell mirrored);
- stop-limit: triggers as the stop; on the trigger bar it fills only if the limit is
  marketable at the trigger price (the open when the bar opened through the stop,
  else the stop), at the better of that price and the limit; afterwards as a limit;
- at most ``max_volume_share`` of the bar's volume (None: no cap); what is left
  stays working as a partial fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

from sessionflow.models import Bar


@dataclass(slots=True)
class WorkingOrder:
    """What a matcher may see of an order; ``triggered`` is the one field it may set."""

    side: str  # "buy" | "sell"
    type: str  # "market" | "limit" | "stop" | "stop_limit"
    remaining: Decimal
    limit: Decimal | None = None
    stop: Decimal | None = None
    triggered: bool = False


@dataclass(frozen=True, slots=True)
class Execution:
    qty: Decimal
    price: Decimal


class Matcher(Protocol):
    def match(self, order: WorkingOrder, bar: Bar, volume_left: Decimal) -> Execution | None:
        """The execution of ``order`` on ``bar``, if any; ``volume_left`` is what earlier
        orders on the same bar have not taken."""
        ...


def _d(value: float) -> Decimal:
    return Decimal(str(value))


class BarMatcher:
    """The contract's fill rules on 1-minute bars (see the module docstring)."""

    def __init__(self, max_volume_share: float | None = None) -> None:
        if max_volume_share is not None and not 0 < max_volume_share <= 1:
            raise ValueError(f"max_volume_share must be in (0, 1], got {max_volume_share}")
        self.max_volume_share = max_volume_share

    def match(self, order: WorkingOrder, bar: Bar, volume_left: Decimal) -> Execution | None:
        price = self._price(order, bar)
        if price is None:
            return None
        qty = order.remaining
        if self.max_volume_share is not None:
            cap = (_d(bar.volume) * _d(self.max_volume_share)).to_integral_value(ROUND_DOWN)
            qty = min(qty, cap, volume_left)
        return Execution(qty, price) if qty > 0 else None

    @staticmethod
    def _price(order: WorkingOrder, bar: Bar) -> Decimal | None:
        buy = order.side == "buy"
        o, h, lo = _d(bar.open), _d(bar.high), _d(bar.low)
        if order.type == "market":
            return o
        if order.type in ("stop", "stop_limit") and not order.triggered:
            assert order.stop is not None
            if (o >= order.stop) if buy else (o <= order.stop):
                trigger = o
            elif (h >= order.stop) if buy else (lo <= order.stop):
                trigger = order.stop
            else:
                return None
            order.triggered = True
            if order.type == "stop":
                return trigger
            assert order.limit is not None
            if (trigger <= order.limit) if buy else (trigger >= order.limit):
                return min(trigger, order.limit) if buy else max(trigger, order.limit)
            return None
        if order.type == "stop":
            return o  # triggered on an earlier bar: a market order now
        assert order.limit is not None
        if (o <= order.limit) if buy else (o >= order.limit):
            return o
        if (lo <= order.limit) if buy else (h >= order.limit):
            return order.limit
        return None


__all__ = ["BarMatcher", "Execution", "Matcher", "WorkingOrder"]
