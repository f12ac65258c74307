"""Helpers shared by tests: settings for the demo store, a virtual wall clock, a run collector."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest
from typer.testing import CliRunner, Result

from sessionflow import Event, Settings, SystemManager, build_system
from sessionflow.cli.app import app
from sessionflow.demo import DEMO_END, DEMO_START, DEMO_SYMBOLS
from sessionflow.store import DuckDBStore


def demo_settings(path: Path | str, **over: Any) -> Settings:
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


class ManualWall:
    """A wall clock the test moves by hand: ``wait`` blocks until the test advances past
    its deadline or the interrupt is set. ``auto`` makes every wait return at once."""

    def __init__(self) -> None:
        self.t = 0.0
        self.requests: list[float] = []  # every wait asked for, in seconds
        self.auto = False
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        with self._cond:
            return self.t

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        if seconds <= 0:
            return interrupt.is_set()
        with self._cond:
            deadline = self.t + seconds
            self.requests.append(seconds)
            self._cond.notify_all()
            while self.t < deadline and not interrupt.is_set():
                if self.auto:
                    self.t = deadline
                    break
                self._cond.wait(0.01)  # the interrupt is an Event, not this condition
        return interrupt.is_set()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self.t += seconds
            self._cond.notify_all()

    def request(self, n: int, timeout: float) -> float:
        """The ``n``-th wait asked for (1-based), once it has been asked for."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"no wait #{n} within {timeout}s: {self.requests}")
            return self.requests[n - 1]


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A folder of ``../shared/data``; missing, it fails under CI=true and skips elsewhere."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_dir():
        unavailable(f"real data not available at {path}")
    return path


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose prerequisite this machine lacks; under CI=true that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so this is an error, not a skip)")
    pytest.skip(reason)


def cli_result(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """The installed command's entry point in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def error_line(res: Result, start: str) -> str:
    """The one stderr line starting with ``start`` (a reason is never wrapped, never on stdout)."""
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(start)]
    assert len(lines) == 1, f"stdout: {res.stdout!r} stderr: {res.stderr!r}"
    assert start not in res.stdout, res.stdout
    return lines[0]
