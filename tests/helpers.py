"""Helpers shared by tests: settings for the demo store, a virtual wall clock, a run collector."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessionflow import Event, Settings, SystemManager, build_system
from sessionflow.demo import DEMO_END, DEMO_START, DEMO_SYMBOLS
from sessionflow.store import DuckDBStore


def demo_settings(path: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "store_path": path,
        "symbols": list(DEMO_SYMBOLS),
        "start": DEMO_START,
        "end": DEMO_END,
    }
    base.update(over)
    return Settings.load(**base)


class FakeWall:
    """A wall clock that advances only when waited on; records every wait."""

    def __init__(self) -> None:
        self.t = 0.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.t

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        with self._lock:
            if seconds > 0:
                self.t += seconds
                self.waits.append(seconds)
        return interrupt.is_set()


def run_collect(
    settings: Settings,
    store: DuckDBStore | None = None,
    jitter: Callable[[], None] | None = None,
    wall: FakeWall | None = None,
    on_event: Callable[[SystemManager, Event], None] | None = None,
) -> tuple[SystemManager, list[Event]]:
    """Run a backtest to the end, collecting every event in delivery order."""
    system = build_system(settings, store=store, jitter=jitter, wall=wall)
    events: list[Event] = []

    def collect(ev: Event) -> None:
        events.append(ev)
        if on_event is not None:
            on_event(system, ev)

    system.on_event(collect)
    system.run()
    return system, events
