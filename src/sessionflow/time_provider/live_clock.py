"""Clocks for live mode: real time, shifted/faster real time, and test-driven time.

Why a ``wait_until(deadline, wake)``: the live coordinator sleeps until the next
check, the session close or new data, whichever comes first. Real time waits on
the wake event with a timeout; a test-driven clock wakes its waiters when the test
moves time, so tests never sleep. Waits are capped (``MAX_WAIT_S``) so a stop
request or a wall-clock step is noticed promptly.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

MAX_WAIT_S = 0.25


class WaitableClock(Protocol):
    def now(self) -> datetime: ...

    def wait_until(self, deadline: datetime, wake: threading.Event) -> None:
        """Return when ``now() >= deadline``, when ``wake`` is set, or after a short cap."""
        ...


class WallTimeClock:
    """Wall time in UTC; with ``start`` it begins at that instant, with ``rate`` it runs faster.

    ``WallTimeClock()`` is the real clock. ``WallTimeClock(start, rate=60)`` replays a
    session sixty times faster against a local server (simulations, demos). With
    ``hold=True`` a simulated clock stands at ``start`` until :meth:`begin` (the system
    calls it once the feed is connected), so the seconds spent building the calendar and
    connecting, many under load, do not eat into the session being simulated.
    """

    def __init__(
        self, start: datetime | None = None, rate: float = 1.0, hold: bool = False
    ) -> None:
        if rate <= 0:
            raise ValueError(f"clock rate must be positive, got {rate}")
        if start is not None and start.tzinfo is None:
            raise ValueError("clock start must be tz-aware")
        self.rate = rate
        self._real = start is None and rate == 1.0
        self._start = start or datetime.now(UTC)
        self._t0: float | None = None if hold and not self._real else time.monotonic()

    def begin(self) -> None:
        """Start a simulated clock running from ``start`` (once; later calls change nothing)."""
        if self._t0 is None:
            self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self._real:
            return datetime.now(UTC)
        if self._t0 is None:
            return self._start
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.rate)

    def real_seconds_until(self, deadline: datetime) -> float:
        return (deadline - self.now()).total_seconds() / self.rate

    def wait_until(self, deadline: datetime, wake: threading.Event) -> None:
        seconds = self.real_seconds_until(deadline)
        if seconds > 0:
            wake.wait(min(seconds, MAX_WAIT_S))


class ManualClock:
    """Time that moves only when told to (tests); every move wakes the waiters."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("clock start must be tz-aware")
        self._now = start
        self._lock = threading.Lock()
        self._waiters: set[threading.Event] = set()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, to: datetime) -> None:
        with self._lock:
            if to < self._now:
                raise ValueError(f"time cannot go back from {self._now} to {to}")
            self._now = to
            waiters = list(self._waiters)
        for w in waiters:
            w.set()

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    def wait_until(self, deadline: datetime, wake: threading.Event) -> None:
        with self._lock:
            if self._now >= deadline:
                return
            self._waiters.add(wake)
        try:
            wake.wait(MAX_WAIT_S)
        finally:
            with self._lock:
                self._waiters.discard(wake)
