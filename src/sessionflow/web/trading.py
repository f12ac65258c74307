"""A strategy run in the dashboard: its equity curve, fills, open orders and positions, live.

The run is a ``Backtest`` (the CLI's own wiring: ExecutionManager, results recorder,
strategy runner) played on its coordinator thread, where every strategy callback
runs. ``on_start`` runs on the request's thread before the coordinator starts, and
the finishing (``on_stop``, cancelling what is still open, the statistics) on a
finisher thread after the coordinator has ended: never two at once.

``LiveResults`` is one more batch consumer, registered after the strategy runner, so
it sees each instant with its fills booked, the portfolio marked and the orders the
strategy placed. It copies what the page shows into plain snapshots under its own
lock; the web threads read only those, never the portfolio or the ExecutionManager,
so a browser neither races the engine nor holds it up. Each instant that changed
something is handed to the event hub as one ``trading`` message (docs/web.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sessionflow.events import BarSliceEvent, BatchEvent, SessionEndEvent
from sessionflow.execution_manager import Order, OrderEvent
from sessionflow.results import BacktestResult
from sessionflow.store import Store
from sessionflow.strategy import Strategy, load_strategy, parse_params
from sessionflow.strategy.run import Backtest, with_trading
from sessionflow.system_manager import Settings, SystemManager

Broadcast = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class StrategySpec:
    """A loaded strategy class and its parameters (defaults merged when the run is built)."""

    spec: str
    cls: type[Strategy]
    params: dict[str, Any]
    cash: float | None = None
    commission: str | None = None
    slippage: str | None = None

    @classmethod
    def load(
        cls,
        spec: str,
        params: dict[str, Any] | list[str] | None = None,
        cash: float | None = None,
        commission: str | None = None,
        slippage: str | None = None,
    ) -> StrategySpec:
        """``FILE.py:Class`` and its parameters, each parsed by its default's type as
        ``--param`` is; raises ``StrategyLoadError`` with one line naming the reason."""
        strategy = load_strategy(spec)
        if isinstance(params, dict):
            params = [
                f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()
            ]
        given = parse_params(strategy, params or [])
        return cls(spec, strategy, given, cash, commission, slippage)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def epoch(t: datetime) -> int:
    return int(t.timestamp())


class LiveResults:
    """Snapshots of a running strategy for the dashboard, taken on the coordinator thread."""

    def __init__(self, bt: Backtest, broadcast: Broadcast) -> None:
        self._bt = bt
        self._broadcast = broadcast
        self._lock = threading.Lock()
        self.equity: list[dict[str, Any]] = []
        self.fills: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []  # open orders
        self.positions: list[dict[str, Any]] = []
        self.cash = float(bt.system.portfolio.cash)
        self.summary: dict[str, Any] | None = None  # once the run has finished
        self._new_fills: list[dict[str, Any]] = []
        self._orders_changed = False

    def attach(self) -> None:
        """Register as the last consumer (after the event hub: a page gets an instant's bars
        before the fills on them)."""
        self._bt.system.execution_manager.on_update(self._order_update)
        self._bt.system.on_batch(self._on_event)

    def _order_update(self, order: Order, event: OrderEvent) -> None:
        self._orders_changed = True
        if event.fill is not None:
            self._new_fills.append(event.fill.to_dict())

    def _on_event(self, ev: BatchEvent) -> None:
        point = None
        if isinstance(ev, BarSliceEvent) and not ev.corrected:
            rec = self._bt.recorder  # registered before us: it sampled this instant already
            point = {"time": epoch(rec.times[-1]), "equity": rec.equity[-1]}
        elif not isinstance(ev, SessionEndEvent) and not self._orders_changed:
            return
        self._publish(ev.time, point)

    def _publish(self, at: datetime, point: dict[str, Any] | None) -> None:
        pf, em = self._bt.system.portfolio, self._bt.system.execution_manager
        held = pf.held
        if point is None and not self._orders_changed and not self._new_fills and not held:
            return
        fills, self._new_fills = self._new_fills, []
        orders = [o.to_dict() for o in em.open_orders()] if self._orders_changed else None
        self._orders_changed = False
        positions = [pf.position(s).to_dict() for s in held]
        cash, equity = float(pf.cash), float(pf.equity)
        with self._lock:
            if point is not None:
                if self.equity and self.equity[-1]["time"] == point["time"]:
                    self.equity.pop()  # a gap fill announced at a bar's instant
                self.equity.append(point)
            self.fills.extend(fills)
            if orders is not None:
                self.orders = orders
            self.positions = positions
            self.cash = cash
        msg: dict[str, Any] = {"type": "trading", "at": at.isoformat(), "equity": equity,
                               "cash": cash, "point": point, "fills": fills,
                               "positions": positions}  # fmt: skip
        if orders is not None:
            msg["orders"] = orders
        self._broadcast(msg)

    def finished(self, result: BacktestResult, at: datetime) -> None:
        """The run ended (finisher thread, coordinator gone): final orders, positions, numbers."""
        self._orders_changed = True
        self._publish(at, None)
        summary = result.summary()
        with self._lock:
            self.summary = summary
        self._broadcast({"type": "trading_done", "summary": summary})

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, copied under the lock (web threads)."""
        with self._lock:
            return {
                "equity": list(self.equity),
                "fills": list(self.fills),
                "orders": list(self.orders),
                "positions": list(self.positions),
                "cash": self.cash,
                "summary": self.summary,
            }


class StrategyRun:
    """One strategy backtest driven by the dashboard: build, start, finish on its own."""

    def __init__(
        self, settings: Settings, spec: StrategySpec, store: Store, broadcast: Broadcast
    ) -> None:
        settings = with_trading(
            settings, cash=spec.cash, commission=spec.commission, slippage=spec.slippage
        )
        self.spec = spec
        self.backtest = Backtest(settings, spec.cls, spec.params, store)
        self.system: SystemManager = self.backtest.system
        self.live = LiveResults(self.backtest, broadcast)
        self.result: BacktestResult | None = None
        self._ended = threading.Event()
        self._finisher = threading.Thread(
            target=self._finish, name="strategy-finisher", daemon=True
        )

    def start(self) -> None:
        """``on_start`` here (before any data), then the coordinator, then the finisher.
        A strategy whose ``on_start`` raises is a ``StrategyError`` and nothing starts."""
        self.live.attach()
        self.backtest.runner.start()
        self.system.start()
        self._finisher.start()

    def _finish(self) -> None:
        system = self.system
        system.wait()
        system.stop()
        interrupted = system.error is None and not self._played_to_end()
        try:  # an on_stop that raises is recorded by finish() as the run's error
            self.result = self.backtest.finish(interrupted)
            self.live.finished(self.result, system.data_manager.clock.now())
        finally:
            self._ended.set()

    def _played_to_end(self) -> bool:
        """The last session of the range ended: otherwise the run was stopped."""
        s = self.system.settings
        if s.start is None or s.end is None:
            return False
        sessions = self.system.calendar.sessions(s.start, s.end)
        daily = self.backtest.recorder.daily
        return bool(sessions) and bool(daily) and daily[-1][0] == sessions[-1].date

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the run has finished (results computed) within ``timeout`` seconds."""
        return self._ended.wait(timeout)

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.spec.spec, "class": self.spec.cls.__name__,
                "params": self.backtest.params}  # fmt: skip
