"""What the dashboard reads from the store: symbols, sessions, bars and the quality matrix.

Bars go through ``export.export_chunks``, the engine's own session grid and
``derive_grid``, so a 5-minute series here is the one a backtest delivers (42 bars
on the 13:00 early close of 2024-11-29), never a second aggregation. The store is
opened read-only by ``serve``, so answers are cached per ``data_version()``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from sessionflow.data_upkeep import minute_ranges
from sessionflow.export import export_chunks
from sessionflow.models import from_us, normalize_symbol
from sessionflow.session_data.quality import quality_percent
from sessionflow.store import Store
from sessionflow.store.base import CommandStore
from sessionflow.time_provider import Clock, ExchangeCalendar, SessionInfo

Range = tuple[int, int]  # [start, end) epoch microseconds, UTC
CACHE_ENTRIES = 512  # answers kept (a bar series or one session's cells each); then start over


class NotFound(LookupError):
    """A symbol or session the store does not have; the API answers 404 with the message."""


@dataclass(frozen=True)
class Cell:
    """One symbol in one session, from the stored bars."""

    symbol: str
    session: date
    bars: int
    expected: int
    gaps: list[Range]

    @property
    def quality(self) -> float:
        return quality_percent(self.bars, self.expected)


def bar_dicts(
    store: Store, symbol: str, session: SessionInfo, interval: int
) -> list[dict[str, Any]]:
    """One symbol's bars of one session, as the engine derives them; times are bar opens."""
    rows: list[dict[str, Any]] = []
    for c in export_chunks(store, [symbol], [session], interval):
        for i in range(len(c)):
            rows.append(
                {
                    "time": int(c.ts_us[i]) // 1_000_000,
                    "open": float(c.open[i]),
                    "high": float(c.high[i]),
                    "low": float(c.low[i]),
                    "close": float(c.close[i]),
                    "volume": int(c.volume[i]),
                    "minutes": int(c.minutes[i]),
                }
            )
    return rows


class StoreView:
    """Read answers for the web API; thread-safe (the store gives each thread a cursor)."""

    def __init__(self, store: CommandStore, calendar: ExchangeCalendar, clock: Clock) -> None:
        """``clock`` says which sessions have happened (wall time for ``serve``)."""
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _cached(self, key: tuple[Any, ...], build: Any) -> Any:
        key = (self.store.data_version(), *key)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._lock:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = value
        return value

    def symbols(self) -> list[str]:
        return list(self._cached(("symbols",), self.store.symbols))

    def sessions(self) -> list[SessionInfo]:
        """Calendar sessions from the first to the last stored one (missing ones included)."""
        return list(self._cached(("sessions",), self._sessions))

    def _sessions(self) -> list[SessionInfo]:
        days = [d for dates in self.stored_days().values() for d in dates]
        return self.calendar.sessions(min(days), max(days)) if days else []

    def stored_days(self) -> dict[str, frozenset[date]]:
        """Per symbol, the sessions holding at least one of its regular-session bars."""
        return dict(self._cached(("days",), self._stored_days))

    def stored_spans(self) -> dict[str, tuple[date, date]]:
        """Per symbol, its first and last stored session (what ``store info`` charges)."""
        return dict(self._cached(("spans",), lambda: {
            sym: (min(days), max(days)) for sym, days in self.stored_days().items()
        }))  # fmt: skip

    def _stored_days(self) -> dict[str, frozenset[date]]:
        per: dict[str, set[date]] = {}
        for sym, day, regular, _ in self.store.bar_days(self.calendar.tz.key):
            if regular:
                per.setdefault(sym, set()).add(day)
        return {sym: frozenset(days) for sym, days in per.items()}

    def symbol(self, text: str) -> str:
        sym = normalize_symbol(text)
        if sym not in self.symbols():
            raise NotFound(f"symbol {sym!r} is not in the store")
        return sym

    def session(self, day: date | None) -> SessionInfo:
        """``day``'s session, or the last stored one; NotFound if the calendar has none,
        or if it is after today's exchange date (a store cannot hold its bars yet)."""
        sessions = self.sessions()
        if day is None:
            if not sessions:
                raise NotFound("the store holds no bars")
            return sessions[-1]
        if not self.calendar.is_session(day):
            raise NotFound(f"{day} is not a {self.calendar.name} session")
        if day > self.clock.now().astimezone(self.calendar.tz).date():
            raise NotFound(f"session {day} has not happened yet")
        return self.calendar.session(day)

    def bars(self, symbol: str, session: SessionInfo, interval: int) -> list[dict[str, Any]]:
        return list(
            self._cached(
                ("bars", symbol, session.date, interval),
                lambda: bar_dicts(self.store, symbol, session, interval),
            )
        )

    def cells(self, sessions: Sequence[SessionInfo]) -> list[Cell]:
        """The quality matrix of every stored symbol over ``sessions`` (reads their 1m bars)."""
        symbols = self.symbols()
        out: list[Cell] = []
        for s in sessions:
            out.extend(
                self._cached(("cells", s.date), lambda s=s: _session_cells(self, s, symbols))
            )
        return out


def _session_cells(view: StoreView, session: SessionInfo, symbols: list[str]) -> list[Cell]:
    expected = session.minute_opens_us()
    (chunk,) = export_chunks(view.store, symbols, [session], 1)
    names = chunk.symbol.astype(str)
    cells = []
    for sym in symbols:
        have = chunk.ts_us[names == sym]
        missing = np.setdiff1d(expected, have, assume_unique=True)
        gaps = minute_ranges(missing.tolist())
        cells.append(Cell(sym, session.date, len(have), session.minutes, gaps))
    return cells


def iso(us: int) -> str:
    return from_us(us).isoformat()
