"""Exchange sessions and the clock every component reads time from."""

from sessionflow.time_provider.calendar import ExchangeCalendar, SessionInfo
from sessionflow.time_provider.clock import BacktestClock, Clock, LiveClock

__all__ = ["BacktestClock", "Clock", "ExchangeCalendar", "LiveClock", "SessionInfo"]
