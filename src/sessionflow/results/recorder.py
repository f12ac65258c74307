"""Samples the portfolio while a run plays: equity at every 1m instant, at every session end."""

from __future__ import annotations

from datetime import date, datetime

from sessionflow.events import BarSliceEvent, BatchEvent, SessionEndEvent
from sessionflow.portfolio import Portfolio


class Recorder:
    """A batch consumer registered after the ExecutionManager: it sees each instant with
    its fills booked and positions marked at the new closes."""

    def __init__(self, portfolio: Portfolio) -> None:
        self._pf = portfolio
        self.times: list[datetime] = []
        self.equity: list[float] = []
        self.cash: list[float] = []
        self.exposure: list[float] = []  # gross market value
        self.daily: list[tuple[date, float]] = []

    def on_event(self, ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent):
            if not ev.corrected:
                self._sample(ev.time)
        elif isinstance(ev, SessionEndEvent):
            self.daily.append((ev.session, float(self._pf.equity)))

    def _sample(self, t: datetime) -> None:
        pf = self._pf
        if self.times and self.times[-1] == t:  # a gap fill announced at a bar's instant
            self.times.pop(), self.equity.pop(), self.cash.pop(), self.exposure.pop()
        self.times.append(t)
        self.equity.append(float(pf.equity))
        self.cash.append(float(pf.cash))
        self.exposure.append(float(pf.gross_exposure))
