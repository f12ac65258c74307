"""What a backtest produced: orders, fills, positions, the equity curve and statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sessionflow.execution_manager import Fill, Order
from sessionflow.results.trades import Trade


@dataclass
class BacktestResult:
    """``complete`` is False when the run stopped early: ``interrupted`` (Ctrl-C) or
    ``error`` (a strategy callback raised; ``traceback`` is the strategy's own)."""

    strategy: str
    params: dict[str, Any]
    orders: list[Order]
    fills: list[Fill]
    trades: list[Trade]
    positions: list[dict[str, Any]]
    equity_curve: list[tuple[datetime, float]]
    daily_equity: list[tuple[date, float]]
    final_equity: float
    cash: float
    statistics: dict[str, Any]
    rejections: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    interrupted: bool = False
    error: str | None = None
    traceback: str | None = None

    def to_arrow(self, table: str = "equity") -> Any:
        """One table as Arrow: orders, fills, trades, positions, equity (per minute) or
        daily (equity at each session's end); columns as ``--output`` writes them."""
        from sessionflow.frames.objects import result_table

        return result_table(self, table)

    def to_pandas(self, table: str = "equity") -> Any:
        """:meth:`to_arrow` as a pandas DataFrame (times tz-aware UTC)."""
        from sessionflow.frames import to_frame

        return to_frame(self.to_arrow(table), "pandas")

    def to_polars(self, table: str = "equity") -> Any:
        """:meth:`to_arrow` as a polars DataFrame."""
        from sessionflow.frames import to_frame

        return to_frame(self.to_arrow(table), "polars")

    def summary(self) -> dict[str, Any]:
        """The JSON of ``--json``: everything but the per-minute curve and the orders."""
        return {
            "strategy": self.strategy,
            "params": self.params,
            "complete": self.complete,
            "interrupted": self.interrupted,
            "error": self.error,
            "statistics": self.statistics,
            "final_equity": self.final_equity,
            "cash": self.cash,
            "orders": len(self.orders),
            "fills": len(self.fills),
            "rejections": self.rejections,
            "positions": self.positions,
        }


def fills_of(orders: list[Order]) -> list[Fill]:
    """Every fill of ``orders``, by time then the order's place in ``orders`` (the order they
    were booked). The place, not a number read from the id: an order a resumed live run
    adopted keeps the killed run's id (``t1-o-1``)."""
    place = {o.id: i for i, o in enumerate(orders)}
    fills = [e.fill for o in orders for e in o.events if e.fill is not None]
    fills.sort(key=lambda f: (f.time, place.get(f.order_id, len(place))))
    return fills
