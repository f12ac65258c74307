"""sessionflow: session-aware market-data engine for backtest and live trading.

Everything a user of the Python API needs is importable from here; ``__all__``
is the public surface (pinned by tests/test_api.py, documented in docs/api.md).

Names are imported on first use (PEP 562 ``__getattr__``), not when the package is: the
command line's ``sessionflow --version`` and ``--help`` import ``sessionflow.cli`` and so
this package, and must not pay for numpy, pandas, DuckDB and the calendar they never use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionflow.events import (
        BarEvent,
        BarSliceEvent,
        BatchEvent,
        DerivedBarEvent,
        DerivedSliceEvent,
        Event,
        QuoteEvent,
        SessionEndEvent,
        SessionStartEvent,
        TickEvent,
    )
    from sessionflow.execution_manager import (
        ExecutionManager,
        Fill,
        Order,
        OrderStatus,
        OrderType,
        Side,
        TimeInForce,
    )
    from sessionflow.frames import iter_bars, read_bars
    from sessionflow.models import Bar, Quote, Tick
    from sessionflow.portfolio import Portfolio, Position
    from sessionflow.results import BacktestResult
    from sessionflow.session_data import SessionReport, SymbolReport, SymbolSnapshot
    from sessionflow.store import BarBatch
    from sessionflow.strategy import Context, Strategy
    from sessionflow.strategy.run import run_backtest
    from sessionflow.system_manager import Mode, State, StopReport, SystemManager, build_system
    from sessionflow.system_manager.settings import Settings

_HOME = {
    "BacktestResult": "sessionflow.results",
    "Bar": "sessionflow.models",
    "BarBatch": "sessionflow.store",
    "BarEvent": "sessionflow.events",
    "BarSliceEvent": "sessionflow.events",
    "BatchEvent": "sessionflow.events",
    "Context": "sessionflow.strategy",
    "DerivedBarEvent": "sessionflow.events",
    "DerivedSliceEvent": "sessionflow.events",
    "Event": "sessionflow.events",
    "ExecutionManager": "sessionflow.execution_manager",
    "Fill": "sessionflow.execution_manager",
    "Mode": "sessionflow.system_manager",
    "Order": "sessionflow.execution_manager",
    "OrderStatus": "sessionflow.execution_manager",
    "OrderType": "sessionflow.execution_manager",
    "Portfolio": "sessionflow.portfolio",
    "Position": "sessionflow.portfolio",
    "Quote": "sessionflow.models",
    "QuoteEvent": "sessionflow.events",
    "SessionEndEvent": "sessionflow.events",
    "SessionReport": "sessionflow.session_data",
    "SessionStartEvent": "sessionflow.events",
    "Settings": "sessionflow.system_manager.settings",
    "Side": "sessionflow.execution_manager",
    "State": "sessionflow.system_manager",
    "StopReport": "sessionflow.system_manager",
    "Strategy": "sessionflow.strategy",
    "SymbolReport": "sessionflow.session_data",
    "SymbolSnapshot": "sessionflow.session_data",
    "SystemManager": "sessionflow.system_manager",
    "Tick": "sessionflow.models",
    "TickEvent": "sessionflow.events",
    "TimeInForce": "sessionflow.execution_manager",
    "build_system": "sessionflow.system_manager",
    "iter_bars": "sessionflow.frames",
    "read_bars": "sessionflow.frames",
    "run_backtest": "sessionflow.strategy.run",
}

__all__ = [
    "BacktestResult",
    "Bar",
    "BarBatch",
    "BarEvent",
    "BarSliceEvent",
    "BatchEvent",
    "Context",
    "DerivedBarEvent",
    "DerivedSliceEvent",
    "Event",
    "ExecutionManager",
    "Fill",
    "Mode",
    "Order",
    "OrderStatus",
    "OrderType",
    "Portfolio",
    "Position",
    "Quote",
    "QuoteEvent",
    "SessionEndEvent",
    "SessionReport",
    "SessionStartEvent",
    "Settings",
    "Side",
    "State",
    "StopReport",
    "Strategy",
    "SymbolReport",
    "SymbolSnapshot",
    "SystemManager",
    "Tick",
    "TickEvent",
    "TimeInForce",
    "build_system",
    "iter_bars",
    "read_bars",
    "run_backtest",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is read."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'sessionflow' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
