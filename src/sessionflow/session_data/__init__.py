"""The one place session state lives: per-symbol bars, metrics, quality and flags."""

from sessionflow.session_data.report import SessionReport, SymbolReport
from sessionflow.session_data.session_data import SessionData
from sessionflow.session_data.symbol_session_data import SymbolSessionData, SymbolSnapshot

__all__ = ["SessionData", "SessionReport", "SymbolReport", "SymbolSessionData", "SymbolSnapshot"]
