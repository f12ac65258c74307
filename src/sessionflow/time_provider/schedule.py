"""Which sessions a live run plays: the exchange calendar, or an explicit list.

Why a seam here: live sessions open and close at real exchange times, which a
test cannot wait for. ``CalendarSchedule`` is what runs in production (holidays,
early closes, DST from ``ExchangeCalendar``); ``FixedSchedule`` lets a test or the
benchmark play a short session of its own. Sessions whose window has already
ended are skipped by the caller, so both may start with a past session.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from sessionflow.time_provider.calendar import ExchangeCalendar, SessionInfo


class SessionSchedule(Protocol):
    def upcoming(self, now: datetime) -> Iterator[SessionInfo]:
        """Sessions in order, from the one on ``now``'s exchange date (if it trades)."""
        ...


class CalendarSchedule:
    def __init__(self, calendar: ExchangeCalendar) -> None:
        self.calendar = calendar

    def upcoming(self, now: datetime) -> Iterator[SessionInfo]:
        today = self.calendar.session_of(now)
        if today is not None:
            yield today
        day = self.calendar.local(now).date()
        while (nxt := self.calendar.next_session(day)) is not None:
            yield nxt
            day = nxt.date


class FixedSchedule:
    def __init__(self, sessions: Sequence[SessionInfo]) -> None:
        self.sessions = sorted(sessions, key=lambda s: s.open)

    def upcoming(self, now: datetime) -> Iterator[SessionInfo]:
        return iter(self.sessions)
