"""The system the dashboard drives, reached only through the SystemManager's public API.

A SystemManager runs once; starting another backtest builds a new one with
``build_system`` on the served store, exactly as the CLI does. Only one system runs
at a time: starting while one is running or paused is refused.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from sessionflow.cli.coverage import NoDataError
from sessionflow.store import CommandStore
from sessionflow.system_manager import Settings, State, StopReport, SystemManager, build_system
from sessionflow.web.events import EventHub
from sessionflow.web.store_view import StoreView
from sessionflow.web.trading import StrategyRun, StrategySpec

STOP_TIMEOUT_S = 2.0


class Conflict(RuntimeError):
    """A control request that the system's state does not allow (HTTP 409)."""


class SystemSlot:
    """The current system (or none yet) and how to start the next one."""

    def __init__(
        self,
        system: SystemManager | None,
        store: CommandStore,
        settings: Settings,
        hub: EventHub,
        view: StoreView,
    ) -> None:
        self.store = store
        self.view = view
        self.settings = settings
        self.hub = hub
        self._lock = threading.Lock()
        self.system = system
        self.run: StrategyRun | None = None  # the strategy the current system plays, if any
        if system is not None:
            system.on_batch(hub)

    def current(self) -> SystemManager:
        system = self.system
        if system is None:
            raise Conflict("no system has been started; POST /api/system/start first")
        return system

    def start(
        self,
        symbols: list[str] | str | None,
        start: date,
        end: date,
        speed: float | None,
        strategy: StrategySpec | None = None,
    ) -> SystemManager:
        """Build and start a backtest on the served store (playing ``strategy`` if given);
        Conflict if one is still going, NoDataError (as the CLI's exit 2) if none of its
        symbols has a bar in its sessions."""
        with self._lock:
            old = self.system
            if old is not None and old.state is not State.STOPPED:
                raise Conflict(f"a system is {old.state.value}; stop it first")
            given: dict[str, Any] = {"mode": "backtest", "start": start, "end": end}
            if symbols is not None:
                given["symbols"] = symbols
            elif not self.settings.symbols:  # none chosen anywhere: every stored symbol
                given["symbols"] = self.store.symbols()
            if speed is not None:
                given["speed"] = speed
            settings = Settings.load(**(self.settings.model_dump() | given))
            run = None
            if strategy is None:
                system = build_system(settings, store=self.store)
            else:
                run = StrategyRun(settings, strategy, self.store, self.hub.broadcast)
                system = run.system
            self._require_bars(system)
            self.hub.reset()
            system.on_batch(self.hub)
            if run is None:
                system.start()
            else:
                run.start()  # on_start, then the coordinator
            self.system, self.run = system, run
            return system

    def _require_bars(self, system: SystemManager) -> None:
        s = system.settings
        assert s.start is not None and s.end is not None  # a backtest's, given above
        sessions = [x.date for x in system.calendar.sessions(s.start, s.end)]
        stored = self.view.stored_days()
        have = set().union(*(stored.get(sym, frozenset()) for sym in s.symbols))
        if not have.intersection(sessions):
            raise NoDataError.of(list(s.symbols), sessions)

    def stop(self) -> StopReport | None:
        system = self.system
        return None if system is None else system.stop(STOP_TIMEOUT_S)


def status_of(slot: SystemSlot) -> dict[str, Any]:
    system = slot.system
    if system is None:
        return {"mode": slot.settings.mode, "state": "none", "clock": None,
                "speed": slot.settings.speed, "session": None, "symbols": [],
                "start": None, "end": None}  # fmt: skip
    s = system.settings
    return system.status().to_dict() | {
        "symbols": list(s.symbols),
        "start": None if s.start is None else s.start.isoformat(),
        "end": None if s.end is None else s.end.isoformat(),
    }
