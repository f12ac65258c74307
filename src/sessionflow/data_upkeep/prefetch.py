"""Loading one session's data from the store into ready-to-merge streams.

Runs on the upkeep thread while the previous session plays, so the coordinator
only swaps a buffer at the session roll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sessionflow.models import Bar, Quote, Tick
from sessionflow.store import Store
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

Item = Bar | Quote | Tick
StreamKey = tuple[int, str]  # (kind rank, symbol): bars 0, quotes 1, ticks 2

BARS, QUOTES, TICKS = 0, 1, 2


@dataclass
class SessionPayload:
    """Per-stream, time-ordered items for one session."""

    session: SessionInfo
    streams: dict[StreamKey, list[Item]] = field(default_factory=dict)
    store_version: int | None = None

    def __len__(self) -> int:
        return sum(len(v) for v in self.streams.values())


class SessionLoader:
    """Reads a session's bars and quotes from a store."""

    def __init__(
        self,
        store: Store,
        calendar: ExchangeCalendar,
        symbols: Sequence[str],
        include_extended_hours: bool = False,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.symbols = list(symbols)
        self.include_extended_hours = include_extended_hours

    def window(self, session: SessionInfo) -> tuple[datetime, datetime]:
        if self.include_extended_hours:
            return self.calendar.extended_bounds(session)
        return session.open, session.close

    def load(self, session: SessionInfo) -> SessionPayload:
        start, end = self.window(session)
        regular_only = not self.include_extended_hours
        payload = SessionPayload(session, store_version=self.store.data_version())
        bars = self.store.load_bars(self.symbols, start, end, regular_only=regular_only)
        for bar in bars.iter_bars():
            payload.streams.setdefault((BARS, bar.symbol), []).append(bar)
        quotes = self.store.load_quotes(self.symbols, start, end, regular_only=regular_only)
        for quote in quotes.iter_quotes():
            payload.streams.setdefault((QUOTES, quote.symbol), []).append(quote)
        return payload

    def load_session_bars(self, session: SessionInfo) -> dict[str, list[Bar]]:
        """Regular-session 1m bars of a past session, per symbol (for history)."""
        batch = self.store.load_bars(self.symbols, session.open, session.close)
        out: dict[str, list[Bar]] = {s: [] for s in self.symbols}
        for bar in batch.iter_bars():
            out[bar.symbol].append(bar)
        return out
