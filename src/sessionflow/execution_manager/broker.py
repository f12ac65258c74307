"""The one boundary between the trading half and a venue.

Everything above a broker (strategy, ExecutionManager, portfolio, results) is the
same in backtest and live; only the broker differs. A broker takes accepted orders,
cancels and replaces, and answers with ``OrderEvent``s through the callback given to
``on_order_event``: accepted, partially filled, filled, cancelled, expired, rejected.
``on_market`` hands it every event the coordinator publishes, first of all consumers:
the backtest broker matches working orders against the bars there; a live broker,
which hears from its venue instead, ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sessionflow.corporate_actions.adjust import Action
from sessionflow.events import BatchEvent
from sessionflow.execution_manager.orders import Order, OrderEvent


class Broker(Protocol):
    def on_order_event(self, callback: Callable[[OrderEvent], None]) -> None:
        """Where the broker sends every order event, on the coordinator thread, in order."""
        ...

    def submit(self, order: Order, now: datetime) -> None: ...

    def cancel(self, order_id: str, now: datetime, reason: str) -> None: ...

    def replace(
        self,
        order_id: str,
        now: datetime,
        quantity: int | None,
        limit: float | None,
        stop: float | None,
    ) -> None: ...

    def on_market(self, event: BatchEvent) -> None: ...

    def apply_action(self, action: Action, now: datetime) -> None:
        """A split of a symbol with working orders (a live venue adjusts them itself)."""
        ...
