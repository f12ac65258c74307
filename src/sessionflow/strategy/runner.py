"""Runs a strategy's callbacks on the coordinator thread, in the documented order.

The ExecutionManager is the first consumer of every instant: it matches orders and
marks the portfolio before this runner sees the instant. The order and fill events
that produces, and those of orders the strategy places, are queued and delivered
after the callback under way returns, so a callback never runs inside another.
"""

from __future__ import annotations

import copy
import logging
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NoReturn

from sessionflow.corporate_actions import Action
from sessionflow.events import (
    BarSliceEvent,
    BatchEvent,
    DerivedSliceEvent,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
)
from sessionflow.execution_manager import Order, OrderEvent
from sessionflow.models import Bar
from sessionflow.strategy.base import Strategy
from sessionflow.strategy.context import Context
from sessionflow.system_manager import SystemManager

CALLBACKS = (
    "on_start", "on_session_start", "on_bar", "on_derived_bar", "on_bars", "on_quote",
    "on_order", "on_fill", "on_corporate_action", "on_session_end", "on_stop",
)  # fmt: skip


class StrategyError(RuntimeError):
    """A strategy callback raised; ``original`` is the user's own exception."""

    def __init__(self, callback: str, original: BaseException) -> None:
        super().__init__(f"strategy callback {callback} raised {type(original).__name__}: "
                         f"{original}")  # fmt: skip
        self.callback = callback
        self.original = original


class StrategyRunner:
    def __init__(
        self, system: SystemManager, strategy: Strategy, params: dict[str, Any], log: logging.Logger
    ) -> None:
        self.strategy = strategy
        self.ctx = Context(system, params, log)
        self.failure: StrategyError | None = None
        self._pending: deque[tuple[str, tuple[Any, ...]]] = deque()
        cls = type(strategy)
        self._wants = {n: getattr(cls, n) is not getattr(Strategy, n) for n in CALLBACKS}
        em = system.execution_manager
        em.on_update(self._order_update)
        em.on_action(self._action)
        system.on_batch(self._on_event)

    def start(self) -> None:
        self._call("on_start")
        self._drain()

    def stop(self) -> None:
        self._call("on_stop")
        self._drain()

    def _call(self, name: str, *args: Any) -> None:
        if not self._wants[name]:
            return
        try:
            getattr(self.strategy, name)(self.ctx, *args)
        except Exception as exc:
            self._fail(name, exc)

    def _fail(self, name: str, exc: Exception) -> NoReturn:
        self.failure = StrategyError(name, exc)
        raise self.failure from exc

    def _each(self, name: str, bars: Iterator[Bar], with_interval: int | None) -> None:
        """One callback per bar of a slice, the method bound once (the per-bar path).

        The bars come straight from the slice's columns (``BarBatch.iter_bars``), not
        wrapped in a ``BarEvent`` first: the callback takes the bar only, and the
        wrapper was one more object per bar at hundreds of bars an instant."""
        cb, ctx = getattr(self.strategy, name), self.ctx
        try:
            if with_interval is None:
                for bar in bars:
                    cb(ctx, bar)
            else:
                for bar in bars:
                    cb(ctx, bar, with_interval)
        except Exception as exc:
            self._fail(name, exc)

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            name, args = pending.popleft()
            self._call(name, *args)

    def _order_update(self, order: Order, event: OrderEvent) -> None:
        if self._wants["on_order"]:
            self._pending.append(("on_order", (copy.copy(order),)))
        if event.fill is not None and self._wants["on_fill"]:
            self._pending.append(("on_fill", (event.fill,)))

    def _action(self, action: Action, _time: datetime) -> None:
        self._pending.append(("on_corporate_action", (action,)))

    def _on_event(self, ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent):
            self._call("on_bars", ev)
            if self._wants["on_bar"]:
                self._each("on_bar", ev.bars.iter_bars(filled=ev.filled), None)
        elif isinstance(ev, DerivedSliceEvent):
            if self._wants["on_derived_bar"] and not ev.revised:
                bars = ev.bars.iter_bars(minutes=ev.minutes)
                self._each("on_derived_bar", bars, ev.interval)
        elif isinstance(ev, SessionStartEvent):
            self._drain()  # splits and dividends effective today come first
            self._call("on_session_start", ev)
        elif isinstance(ev, SessionEndEvent):
            self._drain()  # day orders expired at the close
            self._call("on_session_end", ev.report)
        elif isinstance(ev, QuoteEvent):
            self._call("on_quote", ev.quote)
        self._drain()
