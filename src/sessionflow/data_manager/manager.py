"""DataManager: one per system. Builds the data path (backtest or live) and answers queries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING

from sessionflow.data_manager.live import LiveParts, build_live
from sessionflow.data_upkeep import SessionLoader, UpkeepWorker
from sessionflow.frames.objects import Bars
from sessionflow.models import normalize_symbol
from sessionflow.session_data import SessionData, SessionReport, SymbolSnapshot
from sessionflow.store import Store
from sessionflow.stream_coordinator import (
    CoordinatorHooks,
    EventPublisher,
    Pacer,
    StreamCoordinator,
    WallClock,
)
from sessionflow.stream_coordinator.live import LiveCoordinator
from sessionflow.time_provider import BacktestClock, Clock, ExchangeCalendar, SessionInfo
from sessionflow.time_provider.live_clock import WallTimeClock

if TYPE_CHECKING:  # system_manager builds this package: only its types here
    from sessionflow.system_manager.settings import Settings


class DataManager:
    """Owns the clock, session_data, the upkeep worker and the stream coordinator."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        calendar: ExchangeCalendar,
        publisher: EventPublisher,
        hooks: CoordinatorHooks,
        wall: WallClock,
        upkeep_jitter: Callable[[], None] | None = None,
        live: LiveParts | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.calendar = calendar
        live_mode = settings.mode == "live"
        self.sessions = [] if live_mode else self._resolve_sessions(settings)
        self._check_symbols(settings.symbols, in_store=not live_mode)
        self.session_data = SessionData(
            settings.symbols,
            derived_intervals=settings.derived_intervals,
            historical_intervals=settings.historical_intervals,
            trailing_days=settings.trailing_days,
        )
        self.loader = SessionLoader(
            store, calendar, settings.symbols, settings.include_extended_hours, settings.adjustment
        )
        self.clock: Clock
        self.coordinator: StreamCoordinator | LiveCoordinator
        if live_mode:  # only the data source and time differ; see data_manager/live.py
            self.clock, self.upkeep, self.coordinator = build_live(
                settings, store, calendar, self.session_data, self.loader, publisher, hooks,
                live, upkeep_jitter,
            )  # fmt: skip
            return
        # replay starts at the window start (04:00 with extended hours), not the open
        self.clock = BacktestClock(self.loader.window(self.sessions[0])[0])
        self.upkeep = UpkeepWorker(
            self.session_data,
            self.loader,
            store,
            calendar,
            max_fill_attempts=settings.max_fill_attempts,
            jitter=upkeep_jitter,
        )
        self.coordinator = StreamCoordinator(
            self.sessions,
            self.session_data,
            self.upkeep,
            self.loader,
            self.clock,
            Pacer(settings.speed, wall),
            publisher,
            hooks,
            check_interval_s=settings.check_interval_seconds,
            end_of_data_timeout_s=settings.end_of_data_timeout_seconds,
            checks_on_upkeep_thread=settings.checks_on_upkeep_thread,
        )

    def _resolve_sessions(self, settings: Settings) -> list[SessionInfo]:
        if settings.start is None or settings.end is None:
            raise ValueError("a backtest needs both start and end dates")
        sessions = self.calendar.sessions(settings.start, settings.end)
        if not sessions:
            raise ValueError(
                f"no {self.calendar.name} sessions between {settings.start} and {settings.end}"
            )
        return sessions

    def connect(self) -> None:
        """Live: start the feed and wait until it is subscribed (raises on bad keys)."""
        if isinstance(self.coordinator, LiveCoordinator):
            self.coordinator.connect()
            if isinstance(self.clock, WallTimeClock):
                self.clock.begin()  # a simulated clock runs from its start from now on

    def _check_symbols(self, symbols: Sequence[str], in_store: bool = True) -> None:
        if not symbols:
            raise ValueError("no symbols given")
        if not in_store:
            return
        known = set(self.store.symbols())
        unknown = [s for s in symbols if s not in known]
        if unknown:
            raise ValueError(f"symbols not in the store: {', '.join(unknown)}")

    def _known(self, symbol: str) -> str:
        """The normalised symbol (``models.normalize_symbol``); KeyError if not in this system."""
        sym = normalize_symbol(symbol)
        if sym not in self.session_data.symbols:
            raise KeyError(f"symbol {sym!r} is not one of this system's symbols")
        return sym

    def snapshot(self, symbol: str) -> SymbolSnapshot:
        return self.session_data.snapshot(self._known(symbol))

    def bars(self, symbol: str, interval: int = 1) -> Bars:
        """This session's bars of one symbol and interval (cheaper than a full snapshot);
        a tuple with ``to_pandas()``/``to_polars()``."""
        return Bars(self.session_data.bars(self._known(symbol), interval))

    def history(self, symbol: str, interval: int, day: date) -> Bars:
        """One trailing session's bars, adjusted as of this session; a tuple with
        ``to_pandas()``/``to_polars()``."""
        return Bars(self.session_data.history_bars(self._known(symbol), interval, day))

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols, sorted; slice events' ``rows`` index this."""
        return self.session_data.symbols

    @property
    def reports(self) -> list[SessionReport]:
        return list(self.coordinator.reports)
