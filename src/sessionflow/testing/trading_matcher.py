"""How the local trading server fills a working order against one stored 1-minute bar.

Why a separate, pluggable piece: the server's protocol, states and errors are
Alpaca's, but the fill rules are the backtest's, so a live run on a replayed session
and the backtest of that session fill alike. ``Matcher`` is the seam;
``FillModelMatcher`` puts the backtest's own ``FillModel`` (prices, gap rules,
stop-limit triggers, the per-bar volume cap shared by the bar's orders) and its
slippage behind it. Which bars an order may meet (opened at or after it, inside a day
order's session) is the book's part, as it is the backtest broker's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sessionflow.execution_manager.fill_model import FillModel
from sessionflow.execution_manager.orders import Order, OrderType, Side, TimeInForce, money
from sessionflow.execution_manager.slippage import NoSlippage, SlippageModel
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
    def match(self, order: WorkingOrder, bar: Bar, taken: Decimal) -> Execution | None:
        """The execution of ``order`` on ``bar``, if any; ``taken``: shares earlier orders
        filled on this bar (they count against the bar's volume cap)."""
        ...


class FillModelMatcher:
    """The backtest's ``FillModel`` and slippage as the server's matcher."""

    def __init__(
        self, model: FillModel | None = None, slippage: SlippageModel | None = None
    ) -> None:
        self.model = model or FillModel()
        self.slippage: SlippageModel = slippage or NoSlippage()

    def match(self, order: WorkingOrder, bar: Bar, taken: Decimal) -> Execution | None:
        side = Side(order.side)
        proxy = Order(
            id="",
            client_order_id="",
            symbol=bar.symbol,
            side=side,
            quantity=max(1, int(order.remaining)),  # a fractional rest is capped below
            type=OrderType(order.type),
            tif=TimeInForce.GTC,
            submitted_at=bar.ts,
            limit=None if order.limit is None else float(order.limit),
            stop=None if order.stop is None else float(order.stop),
        )
        available = self.model.capacity(bar.volume) - taken
        _, price, order.triggered = self.model.match(
            proxy, order.triggered, bar.open, bar.high, bar.low, max(0, int(available))
        )
        qty = min(order.remaining, available)
        if price is None or qty <= 0:
            return None
        filled = self.slippage.apply(money(price), side)
        if order.limit is not None:  # slippage never makes a limit fill worse than its limit
            filled = min(filled, order.limit) if side is Side.BUY else max(filled, order.limit)
        return Execution(qty, filled)


__all__ = ["Execution", "FillModelMatcher", "Matcher", "WorkingOrder"]
