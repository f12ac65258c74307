"""Round trips from fills: a trade opens when a symbol's position leaves zero and closes
when it returns to zero (a fill through zero closes one and opens the next)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sessionflow.execution_manager import Fill
from sessionflow.execution_manager.orders import money


@dataclass(frozen=True)
class Trade:
    symbol: str
    direction: str  # long or short
    opened: datetime
    closed: datetime
    quantity: int  # the largest position held during the trade
    pnl: float  # net of the commissions of its fills

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "direction": self.direction,
            "opened": self.opened.isoformat(),
            "closed": self.closed.isoformat(),
            "quantity": self.quantity,
            "pnl": self.pnl,
        }


@dataclass
class _Open:
    opened: datetime
    qty: int = 0
    cost: Decimal = Decimal(0)
    pnl: Decimal = Decimal(0)
    peak: int = 0


def round_trips(fills: list[Fill]) -> tuple[list[Trade], int]:
    """Closed trades in closing order, and how many are still open at the end."""
    open_: dict[str, _Open] = {}
    done: list[Trade] = []
    for f in fills:
        price, fee, left = money(f.price), money(f.commission), f.signed_quantity
        while left:
            t = open_.setdefault(f.symbol, _Open(f.time))
            t.pnl -= fee
            fee = Decimal(0)
            if t.qty == 0 or (t.qty > 0) == (left > 0):
                t.cost += left * price
                t.qty += left
                t.peak = max(t.peak, abs(t.qty))
                left = 0
                continue
            step = left if abs(left) <= abs(t.qty) else -t.qty
            removed = t.cost * abs(step) / abs(t.qty)
            t.pnl += -step * price - removed
            t.cost -= removed
            was_long = t.qty > 0
            t.qty += step
            left -= step
            if t.qty == 0:
                direction = "long" if was_long else "short"
                done.append(Trade(f.symbol, direction, t.opened, f.time, t.peak, float(t.pnl)))
                del open_[f.symbol]
    return done, sum(1 for t in open_.values() if t.qty)
