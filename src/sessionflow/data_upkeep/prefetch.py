"""Loading one session's data from the store into ready-to-merge streams.

Runs on the upkeep thread while the previous session plays, so the coordinator
only swaps a buffer at the session roll. Bars stay columnar (already ordered by
(ts, symbol) by the store, which is the merge of the per-symbol bar streams);
quotes are per-symbol object streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from sessionflow.corporate_actions.adjust import Action, MapEntry, check_mode
from sessionflow.corporate_actions.history import session_bars, stored_actions
from sessionflow.models import MAX_VOLUME, Bar, Quote, Tick
from sessionflow.store import BarBatch, Store
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

Item = Bar | Quote | Tick
StreamKey = tuple[int, str]  # (kind rank, symbol): bars 0, quotes 1, ticks 2

BARS, QUOTES, TICKS = 0, 1, 2
MINUTE_US = 60_000_000


@dataclass
class ReplayBars:
    """A session's 1m bars as columns, ordered by (available_at, symbol), cut into groups.

    ``starts[g]:starts[g+1]`` is group ``g``: every bar that becomes available at
    ``available_us[starts[g]]``. ``rows`` are symbol rows in SessionData.
    """

    batch: BarBatch
    rows: npt.NDArray[np.intp]
    available_us: npt.NDArray[np.int64]
    starts: npt.NDArray[np.intp]
    # per group: regular bars, volumes in bounds, each symbol once in ascending rows;
    # checked here once per session so the per-instant write can skip those checks
    clean: npt.NDArray[np.bool_]
    # ``starts`` and ``clean`` as Python lists: the replay reads one item per step
    bounds: list[int] = field(init=False, repr=False)
    clean_list: list[bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.bounds = self.starts.tolist()
        self.clean_list = self.clean.tolist()

    @classmethod
    def build(cls, rows: npt.NDArray[np.intp], batch: BarBatch) -> ReplayBars:
        available = batch.ts_us + MINUTE_US
        if len(available):
            cut = np.flatnonzero(np.diff(available)) + 1
            starts = np.concatenate(([0], cut, [len(available)])).astype(np.intp)
        else:
            starts = np.zeros(1, dtype=np.intp)
        return cls(batch, rows, available, starts, _clean_groups(rows, batch, starts))

    @property
    def groups(self) -> int:
        return len(self.starts) - 1

    def __len__(self) -> int:
        return len(self.batch)


def _clean_groups(
    rows: npt.NDArray[np.intp], batch: BarBatch, starts: npt.NDArray[np.intp]
) -> npt.NDArray[np.bool_]:
    """Which groups hold only regular bars with volumes in 0..MAX_VOLUME, their symbol
    rows strictly ascending (so no symbol twice)."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    bad = ~batch.regular | (batch.volume.view(np.uint64) > MAX_VOLUME)  # negatives wrap
    unordered = np.zeros(n, dtype=np.bool_)
    unordered[:-1] = rows[1:] <= rows[:-1]  # pair (i, i+1), counted in i's group
    unordered[starts[1:-1] - 1] = False  # pairs across a group boundary do not count
    dirty: npt.NDArray[np.bool_] = np.logical_or.reduceat(bad | unordered, starts[:-1])
    return ~dirty


@dataclass
class SessionPayload:
    """One session's replay data: columnar bars plus per-stream quotes/ticks."""

    session: SessionInfo
    bars: ReplayBars | None = None
    streams: dict[StreamKey, list[Item]] = field(default_factory=dict)
    store_version: int | None = None

    def __len__(self) -> int:
        n = len(self.bars) if self.bars is not None else 0
        return n + sum(len(v) for v in self.streams.values())


class SessionLoader:
    """Reads a session's bars and quotes from a store."""

    def __init__(
        self,
        store: Store,
        calendar: ExchangeCalendar,
        symbols: Sequence[str],
        include_extended_hours: bool = False,
        adjustment: str = "raw",
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.symbols = sorted(set(symbols))
        self.include_extended_hours = include_extended_hours
        self.adjustment = check_mode(adjustment)
        self._actions: tuple[int | None, list[Action], list[MapEntry]] | None = None

    def window(self, session: SessionInfo) -> tuple[datetime, datetime]:
        if self.include_extended_hours:
            return self.calendar.extended_bounds(session)
        return session.open, session.close

    def load(self, session: SessionInfo) -> SessionPayload:
        start, end = self.window(session)
        regular_only = not self.include_extended_hours
        version = self.store.data_version()
        rows, bars = self.store.load_bar_rows(self.symbols, start, end, regular_only=regular_only)
        payload = SessionPayload(session, ReplayBars.build(rows, bars), store_version=version)
        quotes = self.store.load_quotes(self.symbols, start, end, regular_only=regular_only)
        for quote in quotes.iter_quotes():
            payload.streams.setdefault((QUOTES, quote.symbol), []).append(quote)
        for tick in self.store.load_ticks(self.symbols, start, end):
            payload.streams.setdefault((TICKS, tick.symbol), []).append(tick)
        return payload

    def actions(self) -> tuple[list[Action], list[MapEntry]]:
        """The symbols' corporate actions and renames (re-read when the store changed)."""
        version = self.store.data_version()
        if self._actions is None or self._actions[0] != version or version is None:
            self._actions = (version, *stored_actions(self.store, self.symbols))
        return self._actions[1], self._actions[2]

    def load_session_bars(self, session: SessionInfo) -> BarBatch:
        """Regular-session 1m bars of a past session (for history), as stored.

        A symbol that traded under another ticker that day (map file) is read under
        that ticker and named as now. The upkeep worker adjusts them for corporate
        actions as they enter history (docs/corporate-actions.md).
        """
        _, renames = self.actions()
        return session_bars(self.store, self.symbols, session, renames)
