"""Events the stream coordinator hands to consumers, in deterministic order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sessionflow.models import Bar, Quote, Tick

if TYPE_CHECKING:
    from sessionflow.session_data.report import SessionReport


@dataclass(frozen=True, slots=True)
class SessionStartEvent:
    session: date
    open: datetime
    close: datetime
    time: datetime


@dataclass(frozen=True, slots=True)
class SessionEndEvent:
    session: date
    time: datetime
    report: SessionReport
    timer_expired: bool


@dataclass(frozen=True, slots=True)
class BarEvent:
    bar: Bar
    time: datetime


@dataclass(frozen=True, slots=True)
class DerivedBarEvent:
    bar: Bar
    time: datetime
    revised: bool = False


@dataclass(frozen=True, slots=True)
class QuoteEvent:
    quote: Quote
    time: datetime


@dataclass(frozen=True, slots=True)
class TickEvent:
    tick: Tick
    time: datetime


Event = SessionStartEvent | SessionEndEvent | BarEvent | DerivedBarEvent | QuoteEvent | TickEvent
