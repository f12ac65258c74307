"""Replay speed: how long the coordinator waits, in wall time, before each step.

``speed=0`` never waits. Otherwise a backtest minute takes ``60/speed`` wall
seconds: ``speed=1`` is real time, ``speed=60`` one backtest minute per second.
Pacing re-anchors at each session start and after a resume, so the overnight
jump and the time spent paused are not "caught up": a pause cuts a wait short,
and on resume the wait is re-planned from the simulated time it had reached.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class WallClock(Protocol):
    def monotonic(self) -> float: ...

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        """Wait up to ``seconds``; return True if ``interrupt`` was set."""
        ...


class MonotonicWallClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        return interrupt.wait(seconds) if seconds > 0 else interrupt.is_set()


class Pacer:
    def __init__(self, speed: float, wall: WallClock) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self.wall = wall
        self._anchor_wall = 0.0
        self._anchor_us = 0

    def anchor(self, sim_us: int) -> None:
        self._anchor_wall = self.wall.monotonic()
        self._anchor_us = sim_us

    def set_speed(self, speed: float, until_us: int) -> None:
        """Change speed from now on, re-anchored at the simulated time reached so far."""
        reached = self.position(until_us)
        self.speed = speed
        self.anchor(reached)

    def position(self, until_us: int, at: float | None = None) -> int:
        """The simulated time reached at wall time ``at`` (default now), capped at ``until_us``."""
        if self.speed == 0:
            return until_us
        wall = self.wall.monotonic() if at is None else at
        elapsed_us = int((wall - self._anchor_wall) * self.speed * 1e6)
        return max(self._anchor_us, min(until_us, self._anchor_us + elapsed_us))

    def wait_until(self, sim_us: int, interrupt: threading.Event) -> bool:
        """Block until wall time catches up with ``sim_us``; True if interrupted."""
        if self.speed == 0:
            return interrupt.is_set()
        target = self._anchor_wall + (sim_us - self._anchor_us) / 1e6 / self.speed
        return self.wall.wait(target - self.wall.monotonic(), interrupt)
