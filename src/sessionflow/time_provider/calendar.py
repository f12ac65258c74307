"""Trading sessions from ``exchange_calendars``: holidays, early closes and DST included.

Nothing in sessionflow hard-codes 09:30-16:00; every open, close and expected
minute comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import numpy.typing as npt
import pandas as pd

from sessionflow.models import to_us

_MINUTE_US = 60_000_000
EXTENDED_OPEN = time(4, 0)
EXTENDED_CLOSE = time(20, 0)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One trading session; ``open``/``close`` are tz-aware UTC.

    The epoch-microsecond forms are computed once: the coordinator and the upkeep
    check read them every minute.
    """

    date: date
    open: datetime
    close: datetime
    open_us: int = field(init=False, repr=False, compare=False)
    close_us: int = field(init=False, repr=False, compare=False)
    minutes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "open_us", to_us(self.open))
        object.__setattr__(self, "close_us", to_us(self.close))
        object.__setattr__(self, "minutes", (self.close_us - self.open_us) // 60_000_000)

    @property
    def early_close(self) -> bool:
        return self.minutes < 390

    def minute_opens_us(self) -> npt.NDArray[np.int64]:
        """Open timestamps (epoch microseconds) of every regular-session minute."""
        return self.open_us + np.arange(self.minutes, dtype=np.int64) * _MINUTE_US


class ExchangeCalendar:
    """A thin, cached view of one exchange calendar (XNYS by default)."""

    def __init__(self, name: str = "XNYS") -> None:
        try:
            self._cal = xcals.get_calendar(name, start="1990-01-01")
        except xcals.errors.InvalidCalendarName as exc:
            raise ValueError(f"unknown exchange calendar {name!r}") from exc
        self.name = name
        self.tz = ZoneInfo(str(self._cal.tz))
        self._session_cached = lru_cache(maxsize=4096)(self._session_uncached)

    def is_session(self, day: date) -> bool:
        """False outside the calendar's years too (the library raises there, or overflows)."""
        return self._in_bounds(day) and bool(self._cal.is_session(pd.Timestamp(day)))

    def session(self, day: date) -> SessionInfo:
        """The session on ``day``; ValueError naming the date if the exchange is closed."""
        return self._session_cached(day)

    def _session_uncached(self, day: date) -> SessionInfo:
        if not self.is_session(day):
            raise ValueError(f"{day.isoformat()} is not a {self.name} trading session")
        label = pd.Timestamp(day)
        return SessionInfo(
            date=day,
            open=self._cal.session_open(label).to_pydatetime().astimezone(UTC),
            close=self._cal.session_close(label).to_pydatetime().astimezone(UTC),
        )

    def _in_bounds(self, day: date) -> bool:
        first = self._cal.first_session.date()
        last = self._cal.last_session.date()
        return bool(first <= day <= last)

    def sessions(self, start: date, end: date) -> list[SessionInfo]:
        """Every session with ``start <= date <= end``."""
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        if not (self._in_bounds(start) and self._in_bounds(end)):
            first, last = self._cal.first_session.date(), self._cal.last_session.date()
            raise ValueError(
                f"sessions {start} .. {end} reach outside the {self.name} calendar"
                f" ({first} .. {last})"
            )
        labels = self._cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
        return [self.session(ts.date()) for ts in labels]

    def previous_sessions(self, day: date, count: int) -> list[SessionInfo]:
        """The ``count`` trading sessions strictly before ``day``, oldest first."""
        if count <= 0:
            return []
        window = self._cal.sessions_in_range(
            pd.Timestamp(day) - pd.Timedelta(days=count * 2 + 10), pd.Timestamp(day)
        )
        before = [ts.date() for ts in window if ts.date() < day]
        return [self.session(d) for d in before[-count:]]

    def next_session(self, day: date) -> SessionInfo | None:
        window = self._cal.sessions_in_range(
            pd.Timestamp(day) + pd.Timedelta(days=1), pd.Timestamp(day) + pd.Timedelta(days=15)
        )
        return self.session(window[0].date()) if len(window) else None

    def session_of(self, ts: datetime) -> SessionInfo | None:
        """The session whose *exchange-local date* contains ``ts``, if that date trades."""
        local_day = ts.astimezone(self.tz).date()
        if not self.is_session(local_day):
            return None
        return self.session(local_day)

    def extended_bounds(self, info: SessionInfo) -> tuple[datetime, datetime]:
        """Pre-market open and post-market close (04:00-20:00 exchange time) of a session."""
        start = datetime.combine(info.date, EXTENDED_OPEN, self.tz)
        end = datetime.combine(info.date, EXTENDED_CLOSE, self.tz)
        return start, end

    def local(self, ts: datetime) -> datetime:
        return ts.astimezone(self.tz)
