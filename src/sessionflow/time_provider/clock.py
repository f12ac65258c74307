"""Clocks: one interface, a backtest clock only the coordinator moves, a live clock on wall time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What every component uses to ask the time; never ``datetime.now()`` directly."""

    def now(self) -> datetime: ...


class BacktestClock:
    """Backtest time. Only the stream coordinator calls :meth:`advance`; time never goes back."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("backtest clock needs a tz-aware start time")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, to: datetime) -> None:
        with self._lock:
            if to < self._now:
                raise ValueError(f"backtest time cannot go back from {self._now} to {to}")
            self._now = to


class LiveClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
