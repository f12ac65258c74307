"""Which (symbol, session) a download still needs, grouped into requests.

Sessions come from the exchange calendar, so a holiday is never asked for and an
early close ends its window early. A session counts only once it closed at least
``SETTLE`` ago (the free plan's SIP delay): one still trading, or just closed, would
be stored partly and marked complete. Windows group consecutive sessions that miss
the same symbols, at most ``max_symbols`` symbols and about ``max_bars`` bars each:
a window is the unit marked complete, so it bounds what an interruption refetches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sessionflow.models import from_us, to_us
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

SETTLE = timedelta(minutes=15)
MAX_SYMBOLS = 100  # per request: the query string stays short
MAX_BARS = 50_000  # per window, about five pages of 10,000
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Window:
    """One request: ``symbols`` over consecutive ``sessions``, from ``start`` to ``end``
    inclusive (the last bar's open, as Alpaca's ``end`` is inclusive)."""

    symbols: tuple[str, ...]
    sessions: tuple[SessionInfo, ...]
    bounds: tuple[tuple[int, int], ...]  # per session: [first, end) epoch us kept

    @property
    def start(self) -> datetime:
        return from_us(self.bounds[0][0])

    @property
    def end(self) -> datetime:
        return from_us(self.bounds[-1][1]) - _MINUTE


@dataclass
class Plan:
    windows: list[Window]
    sessions: list[SessionInfo]  # closed sessions in the range
    not_closed: list[date]  # sessions in the range not yet closed (+ SETTLE): not fetched
    already: int  # symbol-sessions complete before this run


def plan_windows(
    calendar: ExchangeCalendar,
    symbols: Sequence[str],
    start: date,
    end: date,
    done: set[tuple[str, date]],
    now: datetime,
    extended: bool = False,
    max_symbols: int = MAX_SYMBOLS,
    max_bars: int = MAX_BARS,
) -> Plan:
    """The requests still needed for ``symbols`` over sessions ``start..end``."""
    all_sessions = calendar.sessions(start, end)
    sessions = [s for s in all_sessions if s.close + SETTLE <= now]
    not_closed = [s.date for s in all_sessions if s.close + SETTLE > now]
    names = sorted(set(symbols))
    already = sum((sym, s.date) in done for s in sessions for sym in names)
    runs: list[tuple[tuple[str, ...], list[SessionInfo]]] = []
    for s in sessions:
        missing = tuple(sym for sym in names if (sym, s.date) not in done)
        if not missing:
            continue
        if runs and runs[-1][0] == missing and _next(calendar, runs[-1][1][-1]) == s.date:
            runs[-1][1].append(s)
        else:
            runs.append((missing, [s]))
    windows: list[Window] = []
    for missing, run in runs:
        for i in range(0, len(missing), max_symbols):
            chunk = missing[i : i + max_symbols]
            minutes = 960 if extended else 390
            per = max(1, max_bars // (len(chunk) * minutes))
            for j in range(0, len(run), per):
                part = tuple(run[j : j + per])
                windows.append(
                    Window(chunk, part, tuple(_bounds(calendar, p, extended) for p in part))
                )
    return Plan(windows, sessions, not_closed, already)


def _next(calendar: ExchangeCalendar, s: SessionInfo) -> date | None:
    following = calendar.next_session(s.date)
    return following.date if following is not None else None


def _bounds(calendar: ExchangeCalendar, s: SessionInfo, extended: bool) -> tuple[int, int]:
    if not extended:
        return s.open_us, s.close_us
    lo, hi = calendar.extended_bounds(s)
    return to_us(lo), to_us(hi)


__all__ = ["MAX_BARS", "MAX_SYMBOLS", "SETTLE", "Plan", "Window", "plan_windows"]
