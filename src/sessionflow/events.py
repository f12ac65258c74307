"""Events the stream coordinator hands to consumers, in deterministic order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from sessionflow._bar_builder import BarRows
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
    """:func:`expand`, lazily: each event (and its Bar) is built in C (:func:`bar_rows`)
    just before the consumer takes it, so one it drops dies young."""
    return chain.from_iterable(map(_per_bar, events))


def bar_rows(ev: BatchEvent) -> BarRows | None:
    """A slice event's per-bar events (``BarEvent``/``DerivedBarEvent``, in the slice's
    order), built in C as they are taken or fed (``BarRows.feed``); None for any other
    event, which is delivered as it is."""
    if isinstance(ev, BarSliceEvent):
        return ev.bars.iter_rows(ev.filled, 1, BarEvent, ev.time, (ev.corrected,))
    if isinstance(ev, DerivedSliceEvent):
        tail = (ev.interval, ev.revised)
        return ev.bars.iter_rows(False, ev.minutes, DerivedBarEvent, ev.time, tail)
    return None


def _per_bar(ev: BatchEvent) -> Iterable[Event]:
    rows = bar_rows(ev)
    if rows is None:  # not a slice: the same event in both views
        return (ev,)  # type: ignore[return-value]
    return rows
