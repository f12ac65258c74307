"""SessionData: the shared, locked home of all session state.

The coordinator thread writes bars here and the upkeep thread reads gaps and
writes fills, derived bars and quality, at the same time. The seed guarded this
with ``asyncio.Lock``, which only orders coroutines on one event loop and does
nothing between OS threads. A ``threading.RLock`` does: every public method
takes it, mutations happen under it, and readers get immutable snapshots taken
under it, so a reader never sees a half-applied write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import date

from sessionflow.models import Bar, Quote, Tick
from sessionflow.session_data.report import SessionReport, SymbolReport
from sessionflow.session_data.symbol_session_data import SymbolSessionData, SymbolSnapshot
from sessionflow.time_provider import SessionInfo


class SessionData:
    """State of the running session for every symbol, plus trailing history."""

    def __init__(
        self,
        symbols: Sequence[str],
        derived_intervals: Sequence[int] = (5, 15),
        historical_intervals: Sequence[int] = (1, 5),
        trailing_days: int = 5,
    ) -> None:
        self._lock = threading.RLock()
        self.derived_intervals = tuple(sorted(set(derived_intervals)))
        self.historical_intervals = tuple(sorted(set(historical_intervals)))
        self.trailing_days = trailing_days
        self._symbols = {s: SymbolSessionData(s) for s in symbols}
        self.current_session: SessionInfo | None = None
        self.session_ended = False
        self.unknown_symbols: dict[str, int] = {}

    @property
    def lock(self) -> threading.RLock:
        """For multi-step read-modify-write by the upkeep worker; hold it briefly."""
        return self._lock

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._symbols)

    def symbol(self, symbol: str) -> SymbolSessionData:
        """The live per-symbol object. Callers must hold :attr:`lock` while using it."""
        return self._symbols[symbol]

    def start_session(self, session: SessionInfo) -> None:
        with self._lock:
            self.current_session = session
            self.session_ended = False
            for data in self._symbols.values():
                data.reset(session)

    def end_session(self) -> None:
        with self._lock:
            self.session_ended = True

    def add_bars(self, bars: Iterable[Bar]) -> list[Bar]:
        """Write bars; returns the accepted ones. Rejections are counted per symbol by reason."""
        accepted: list[Bar] = []
        with self._lock:
            for bar in bars:
                data = self._symbols.get(bar.symbol)
                if data is None:
                    self.unknown_symbols[bar.symbol] = self.unknown_symbols.get(bar.symbol, 0) + 1
                    continue
                if data.add_bar(bar) is None:
                    accepted.append(bar)
        return accepted

    def add_quotes(self, quotes: Iterable[Quote]) -> None:
        with self._lock:
            for q in quotes:
                data = self._symbols.get(q.symbol)
                if data is None:
                    self.unknown_symbols[q.symbol] = self.unknown_symbols.get(q.symbol, 0) + 1
                    continue
                data.quotes.append(q)
                data.updated.add("quotes")

    def add_ticks(self, ticks: Iterable[Tick]) -> None:
        with self._lock:
            for t in ticks:
                data = self._symbols.get(t.symbol)
                if data is None:
                    self.unknown_symbols[t.symbol] = self.unknown_symbols.get(t.symbol, 0) + 1
                    continue
                data.ticks.append(t)
                data.updated.add("ticks")

    def snapshot(self, symbol: str) -> SymbolSnapshot:
        with self._lock:
            return self._symbols[symbol].snapshot()

    def snapshots(self) -> dict[str, SymbolSnapshot]:
        """All symbols, taken under one lock hold so they agree with each other."""
        with self._lock:
            return {s: d.snapshot() for s, d in self._symbols.items()}

    def take_updates(self, symbol: str) -> frozenset[str]:
        """Data types changed for ``symbol`` since the last call; clears the flags."""
        with self._lock:
            data = self._symbols[symbol]
            changed = frozenset(data.updated)
            data.updated.clear()
            return changed

    def set_historical(self, symbol: str, interval: int, day: date, bars: Sequence[Bar]) -> None:
        with self._lock:
            self._symbols[symbol].historical_bars.setdefault(interval, {})[day] = list(bars)

    def trim_historical(self, keep: Iterable[date]) -> None:
        """Drop history for days not in ``keep`` (the trailing trading days)."""
        keep_set = set(keep)
        with self._lock:
            for data in self._symbols.values():
                for per_day in data.historical_bars.values():
                    for day in [d for d in per_day if d not in keep_set]:
                        del per_day[day]

    def report(self) -> SessionReport:
        """The per-symbol summary of the current session, as the CLI prints it."""
        with self._lock:
            session = self.current_session
            if session is None:
                raise RuntimeError("no session has started")
            rows = [
                SymbolReport.from_data(d, session.minutes, self.derived_intervals)
                for d in self._symbols.values()
            ]
            return SessionReport(session=session.date, early_close=session.early_close, rows=rows)
