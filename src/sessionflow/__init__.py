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
from sessionflow.execution_manager import Fill, PaperExecutionManager
from sessionflow.models import Bar, Quote, Tick
from sessionflow.session_data import SessionReport, SymbolReport, SymbolSnapshot
from sessionflow.store import BarBatch
from sessionflow.system_manager import Mode, State, StopReport, SystemManager, build_system
from sessionflow.system_manager.settings import Settings

__all__ = [
    "Bar",
    "BarBatch",
    "BarEvent",
    "BarSliceEvent",
    "BatchEvent",
    "DerivedBarEvent",
    "DerivedSliceEvent",
    "Event",
    "Fill",
    "Mode",
    "PaperExecutionManager",
    "Quote",
    "QuoteEvent",
    "SessionEndEvent",
    "SessionReport",
    "SessionStartEvent",
    "Settings",
    "State",
    "StopReport",
    "SymbolReport",
    "SymbolSnapshot",
    "SystemManager",
    "Tick",
    "TickEvent",
    "build_system",
]
