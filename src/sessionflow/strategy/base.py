"""The Strategy base class: override the callbacks you need; the rest do nothing.

Callbacks run on the coordinator thread, in one deterministic order per instant
(docs/strategies.md): the bars of the instant (``on_bars`` then ``on_bar``), then the
order and fill events the instant produced, then derived bars announced at the same
time. Orders placed in a callback can only fill against bars that arrive later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sessionflow.corporate_actions import Action
    from sessionflow.events import BarSliceEvent, SessionStartEvent
    from sessionflow.execution_manager import Fill, Order
    from sessionflow.models import Bar, Quote
    from sessionflow.session_data import SessionReport
    from sessionflow.strategy.context import Context


class Strategy:
    """Subclass it; ``params`` holds the defaults that ``--param k=v`` overrides (each
    value parsed by its default's type) and that ``ctx.params`` gives merged.

    ``per_symbol_independent = True`` declares that what the strategy does for one
    symbol never depends on another (no shared cash decisions, no cross-symbol
    signals), which a sharded run (``--workers``) needs.
    """

    params: ClassVar[dict[str, Any]] = {}
    per_symbol_independent: ClassVar[bool] = False

    def on_start(self, ctx: Context) -> None:
        """Once, before any data (warm indicators up in the first on_session_start,
        when the trailing history is loaded)."""

    def on_session_start(self, ctx: Context, event: SessionStartEvent) -> None:
        """At each session's start, after its splits and dividends took effect."""

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        """Every 1m bar, as it becomes available (``ctx.now`` is its close)."""

    def on_derived_bar(self, ctx: Context, bar: Bar, interval: int) -> None:
        """Every derived bar (5m, 15m, ... as configured), aligned to the session open."""

    def on_bars(self, ctx: Context, event: BarSliceEvent) -> None:
        """Every 1m bar of one instant as columns: the fast path for many symbols."""

    def on_quote(self, ctx: Context, quote: Quote) -> None:
        """Every stored or live quote bar."""

    def on_order(self, ctx: Context, order: Order) -> None:
        """Every state change of an order (a copy of the order as it was then)."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        """Every fill (after the portfolio booked it)."""

    def on_corporate_action(self, ctx: Context, action: Action) -> None:
        """A split or dividend took effect (history is already adjusted for it)."""

    def on_session_end(self, ctx: Context, report: SessionReport) -> None:
        """At each session's end, after day orders expired."""

    def on_stop(self, ctx: Context) -> None:
        """Once, after the last session (not after a failure in another callback)."""
