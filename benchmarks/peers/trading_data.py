"""The bars a trading reference engine is fed, read from a sessionflow store.

Both sides of a parity run (tests/test_parity_backtrader.py) and the strategy benchmark
(benchmarks/strategy_bench.py) must see the same bars:

- 1m bars: read from the store (``load_bars``, regular session minutes only), one
  DataFrame per symbol;
- 5m bars: the ones sessionflow's engine derives (windows aligned to the session open, a
  short last window on an early close, no bar for a window without trades), collected
  from a run of the engine itself, so the reference is not fed a resampler's idea of them
  (backtrader's ``resampledata`` is wrong around missing minutes, benchmarks/README.md).

Index: backtrader stamps a bar by its close and a bar is available at that stamp, while
sessionflow stamps a bar by its open and delivers it at its close. The frames carry the
close (``open + minutes``) as a naive UTC index, the open in column ``open_ts``, so both
times are at hand without recomputing windows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from sessionflow import DerivedSliceEvent, Settings, build_system
from sessionflow.corporate_actions.adjust import Action
from sessionflow.events import BatchEvent, SessionStartEvent
from sessionflow.importer.bars import concat_bars
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.time_provider import ExchangeCalendar

COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class SessionTimes:
    """One session's open and close, naive UTC (backtrader's clock)."""

    day: date
    open: datetime
    close: datetime


@dataclass(frozen=True)
class Feeds:
    """Per symbol: the 1m and 5m frames; the sessions played; the store's actions."""

    one: dict[str, pd.DataFrame]
    five: dict[str, pd.DataFrame]
    sessions: list[SessionTimes]
    actions: list[Action]


def _naive(us: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(us, unit="us"))


def _frames(batch: BarBatch, minutes: np.ndarray) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for symbol in sorted(set(batch.symbol.tolist())):
        m = batch.symbol == symbol
        opens = batch.ts_us[m]
        order = np.argsort(opens, kind="stable")
        opens = opens[order]
        closes = opens + minutes[m][order] * 60_000_000
        frame = pd.DataFrame(
            {c: getattr(batch, c)[m][order] for c in COLUMNS},
            index=_naive(closes),
        )
        frame["open_ts"] = _naive(opens)
        frame.index.name = "datetime"
        out[symbol] = frame
    return out


def _five_minute(settings: Settings) -> tuple[BarBatch, np.ndarray, list[SessionTimes]]:
    """The 5m bars the engine derives and the sessions it played, from one batch run."""
    parts: list[BarBatch] = []
    lengths: list[np.ndarray] = []
    sessions: list[SessionTimes] = []
    system = build_system(settings.model_copy(update={"derived_intervals": [5]}))

    def on_batch(ev: BatchEvent) -> None:
        if isinstance(ev, DerivedSliceEvent) and ev.interval == 5 and not ev.revised:
            parts.append(ev.bars)
            lengths.append(np.full(len(ev.bars), ev.minutes, dtype=np.int64))
        elif isinstance(ev, SessionStartEvent):
            o, c = (t.astimezone(UTC).replace(tzinfo=None) for t in (ev.open, ev.close))
            sessions.append(SessionTimes(ev.session, o, c))

    system.on_batch(on_batch)
    system.run()
    batch = concat_bars(parts)
    return batch, np.concatenate(lengths), sessions


def load_feeds(store: Path, symbols: list[str], start: date, end: date) -> Feeds:
    """The 1m bars of ``symbols`` from ``store`` and the engine's 5m bars over them."""
    calendar = ExchangeCalendar("XNYS")
    days = calendar.sessions(start, end)
    begin, finish = days[0].open, days[-1].close + timedelta(minutes=1)
    db = DuckDBStore(store, read_only=True)
    try:
        one = db.load_bars(symbols, begin, finish, regular_only=True)
        actions = [a for a in db.load_actions(symbols) if start <= a.ex_date <= end]
    finally:
        db.close()
    settings = Settings.load(store_path=store, symbols=symbols, start=start, end=end)
    five, lengths, sessions = _five_minute(settings)
    return Feeds(
        one=_frames(one, np.ones(len(one), dtype=np.int64)),
        five=_frames(five, lengths),
        sessions=sessions,
        actions=actions,
    )


class CrossState:
    """A fast/slow moving-average crossover over one symbol's 5m closes.

    Kept in integer cents: ``fast > slow`` is ``sum_fast * slow > sum_slow * fast``,
    exact, so two engines (or a float SMA summed in another order) cannot disagree on a
    near-tie. Both sums are kept up as closes come and go (integers: no drift), not
    summed anew per bar. ``update`` returns True on a cross above, False on a cross
    below, else None.
    """

    def __init__(self, fast: int, slow: int) -> None:
        self.fast, self.slow = fast, slow
        self.cents: deque[int] = deque(maxlen=slow)
        self.fast_sum = self.slow_sum = 0
        self.above: bool | None = None

    def update(self, close: float) -> bool | None:
        cents, c = self.cents, round(close * 100)
        if len(cents) >= self.fast:
            self.fast_sum -= cents[-self.fast]  # about to leave the fast window
        if len(cents) == self.slow:
            self.slow_sum -= cents[0]  # about to leave the slow window
        cents.append(c)
        self.slow_sum += c
        self.fast_sum += c
        if len(cents) < self.slow:
            return None
        above = self.fast_sum * self.slow > self.slow_sum * self.fast
        before, self.above = self.above, above
        return None if before is None or before == above else above
