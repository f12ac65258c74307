"""sessionflow: session-aware market-data engine for backtest and live trading."""

from sessionflow.events import (
    BarEvent,
    DerivedBarEvent,
    Event,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
    TickEvent,
)
from sessionflow.models import Bar, Quote, Tick
from sessionflow.system_manager import Mode, State, StopReport, SystemManager, build_system
from sessionflow.system_manager.settings import Settings

__all__ = [
    "Bar",
    "BarEvent",
    "DerivedBarEvent",
    "Event",
    "Mode",
    "Quote",
    "QuoteEvent",
    "SessionEndEvent",
    "SessionStartEvent",
    "Settings",
    "State",
    "StopReport",
    "SystemManager",
    "Tick",
    "TickEvent",
    "build_system",
]
