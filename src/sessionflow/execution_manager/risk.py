"""Pre-trade risk limits: checked before an order is sent, the same in backtest and live.

Why a module apart: the limits are policy, the ExecutionManager is bookkeeping; the
manager calls :meth:`PreTradeRisk.check` from one place, last among its checks (so an
order refused for another reason never counts against the order rate), and an order
refused here is a rejection like any other: status ``rejected``, a reason the
strategy receives through ``on_order``, counted by reason.

The limits, each off when None:

- ``max_order_value``: quantity x reference price (limit, stop, else the last close);
- ``max_position_value``: the position's value if this order and the symbol's other
  open orders filled, for an order that grows the position (one that reduces it passes);
- ``max_orders_per_minute``: orders sent in the trailing 60 s of clock time;
- ``daily_loss_limit``: once equity is that far below its value at the session's start,
  orders that grow a position are refused for the rest of the session (orders that only
  reduce one still pass, so a strategy can get out).

The kill switch's own orders (closing positions at stop) run under :meth:`exempt`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sessionflow.execution_manager.orders import Order, RejectReason, money

RATE_WINDOW = timedelta(minutes=1)
Refusal = tuple[RejectReason, str]


@dataclass(frozen=True)
class TradeLimits:
    max_order_value: float | None = None
    max_position_value: float | None = None
    max_orders_per_minute: int | None = None
    daily_loss_limit: float | None = None

    @property
    def active(self) -> bool:
        limits = (self.max_order_value, self.max_position_value, self.max_orders_per_minute,
                  self.daily_loss_limit)  # fmt: skip
        return any(v is not None for v in limits)


class PreTradeRisk:
    def __init__(self, limits: TradeLimits | None = None) -> None:
        self.limits = limits or TradeLimits()
        self.active = self.limits.active
        self._order_value = _money_or_none(self.limits.max_order_value)
        self._position_value = _money_or_none(self.limits.max_position_value)
        self._loss = _money_or_none(self.limits.daily_loss_limit)
        self._sent: deque[datetime] = deque()  # send times within the rate window
        self._day_start: Decimal | None = None  # equity at the session's start
        self.halted: str | None = None  # why new exposure is refused this session
        self._exempt = 0

    def begin_session(self, equity: Decimal) -> None:
        """A new session: the loss limit counts from this equity again."""
        self._day_start = equity
        self.halted = None

    @contextmanager
    def exempt(self) -> Iterator[None]:
        """Orders submitted inside are neither checked nor counted (the kill switch's)."""
        self._exempt += 1
        try:
            yield
        finally:
            self._exempt -= 1

    def check(
        self, order: Order, ref: Decimal, before: int, equity: Decimal, now: datetime
    ) -> Refusal | None:
        """``before``: the symbol's position plus its other open orders, signed; ``ref``:
        the order's reference price. Passing records the order as sent."""
        if not self.active or self._exempt:
            return None
        found = self._refusal(order, ref, before, equity, now)
        if found is None and self.limits.max_orders_per_minute is not None:
            self._sent.append(now)
        return found

    def _refusal(
        self, order: Order, ref: Decimal, before: int, equity: Decimal, now: datetime
    ) -> Refusal | None:
        qty, sym = order.quantity, order.symbol
        after = before + order.side.sign * qty
        grows = abs(after) > abs(before)
        if self._loss is not None and grows:
            start = self._day_start
            if start is None:  # no session start seen (a run joined mid-session)
                start = self._day_start = equity
            if self.halted is None and start - equity >= self._loss:
                self.halted = (f"equity {equity:.2f} is {start - equity:.2f} below the "
                               f"session's start {start:.2f}")  # fmt: skip
            if self.halted is not None:
                return (
                    RejectReason.DAILY_LOSS_LIMIT,
                    f"{order.side.value} {qty} {sym}: daily loss limit {self._loss:.2f} "
                    f"reached ({self.halted}); only orders that reduce a position pass",
                )
        value = qty * ref
        if self._order_value is not None and value > self._order_value:
            return (
                RejectReason.MAX_ORDER_VALUE,
                f"{order.side.value} {qty} {sym} at ~{ref} is {value:.2f}, above the "
                f"maximum order value {self._order_value:.2f}",
            )
        if self._position_value is not None and grows:
            held = abs(after) * ref
            if held > self._position_value:
                return (
                    RejectReason.MAX_POSITION_VALUE,
                    f"{order.side.value} {qty} {sym} makes the position {after} (with open "
                    f"orders) worth {held:.2f} at ~{ref}, above the maximum "
                    f"{self._position_value:.2f}",
                )
        top = self.limits.max_orders_per_minute
        if top is not None:
            sent = self._sent
            while sent and now - sent[0] >= RATE_WINDOW:
                sent.popleft()
            if len(sent) >= top:
                return (
                    RejectReason.ORDER_RATE,
                    f"{order.side.value} {qty} {sym}: {len(sent)} orders sent in the last "
                    f"minute, the maximum is {top}",
                )
        return None


def _money_or_none(x: float | None) -> Decimal | None:
    return None if x is None else money(x)


__all__ = ["PreTradeRisk", "TradeLimits"]
