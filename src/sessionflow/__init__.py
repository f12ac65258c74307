"""sessionflow: session-aware market-data engine for backtest and live trading.

Everything a user of the Python API needs is importable from here; ``__all__``
is the public surface (pinned by tests/test_api.py, documented in docs/api.md).
"""

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
