"""Events the stream coordinator hands to consumers, in deterministic order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from sessionflow.models import Bar, Quote, Tick
from sessionflow.store.base import BarBatch

IDX = npt.NDArray[np.intp]

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


class BarEvent(NamedTuple):
    """One 1m bar; ``time`` is when it became available (its close).

    ``corrected``: the vendor corrected a bar already given for this minute (or sent
    the correction first); this one replaces it.
    """

    bar: Bar
    time: datetime
    corrected: bool = False


class DerivedBarEvent(NamedTuple):
    """One derived bar of the ``interval``-minute series (``bar.minutes`` is shorter for a
    session's short last window); ``revised`` when a gap fill changed an already
    announced window. ``interval`` saves consumers recovering the series from the bar."""

    bar: Bar
    time: datetime
    interval: int
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


@dataclass(frozen=True, slots=True)
class BarSliceEvent:
    """Every 1m bar that became available at ``time``, as columns sorted by symbol.

    ``rows[i]`` is bar ``i``'s symbol's position in ``data_manager.symbols`` (sorted), so
    a consumer can keep per-symbol state in arrays and update it without a dict lookup.
    """

    bars: BarBatch
    time: datetime
    filled: bool = False
    corrected: bool = False
    rows: IDX | None = None


@dataclass(frozen=True, slots=True)
class DerivedSliceEvent:
    """One derived window (``interval`` minutes, ``minutes`` long) for several symbols;
    ``rows`` as in :class:`BarSliceEvent`."""

    bars: BarBatch
    time: datetime
    interval: int
    minutes: int
    revised: bool = False
    rows: IDX | None = None


BatchEvent = (
    SessionStartEvent | SessionEndEvent | BarSliceEvent | DerivedSliceEvent | QuoteEvent | TickEvent
)


def expand(events: list[BatchEvent]) -> list[Event]:
    """Per-bar view of batch events: one BarEvent/DerivedBarEvent per bar, same order."""
    return list(iter_expand(events))


def iter_expand(events: list[BatchEvent]) -> Iterator[Event]:
    """:func:`expand`, lazily: each event (and its Bar) is built in C (``tuple.__new__``
    over zipped fields) just before the consumer takes it, so one it drops dies young."""
    new = tuple.__new__
    for ev in events:
        if isinstance(ev, BarSliceEvent):
            n = len(ev.bars)
            bars = ev.bars.iter_bars(filled=ev.filled)
            fields = zip(bars, repeat(ev.time, n), repeat(ev.corrected, n), strict=True)
            yield from map(new, repeat(BarEvent, n), fields)
        elif isinstance(ev, DerivedSliceEvent):
            n = len(ev.bars)
            bars = ev.bars.iter_bars(minutes=ev.minutes)
            times, kinds = repeat(ev.time, n), repeat(ev.interval, n)
            fields4 = zip(bars, times, kinds, repeat(ev.revised, n), strict=True)
            yield from map(new, repeat(DerivedBarEvent, n), fields4)
        else:
            yield ev
