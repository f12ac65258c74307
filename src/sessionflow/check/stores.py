"""Real DuckDB stores with one injected fault each, a checksum, and the check's data set.

The fault stores subclass :class:`DuckDBStore`, so everything but the injected
behaviour is the real engine path (MERGE writes, DuckDB range scans).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sessionflow.demo import synthetic_bars
from sessionflow.models import MINUTE, Bar, Tick, from_us
from sessionflow.store import BarBatch, DuckDBStore, QuoteBatch, Store
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

MINUTE_US = 60_000_000
# Wed 2024-11-27, the Thanksgiving holiday, the 13:00 ET early close on Fri 11-29, Mon 12-02.
CHECK_SYMBOLS = ("AAA", "BBB", "CCC")
CHECK_START = date(2024, 11, 27)
CHECK_END = date(2024, 12, 2)
CHECK_GAPPY = {"BBB": 0.02}
_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


EXTENDED_MINUTES = 15  # AAA's pre-market and after-hours bars per session
QUOTE_EVERY = 10  # AAA and BBB have a quote bar every 10th regular minute
TICK_EVERY = 15  # CCC has two trades every 15th regular minute


def build_check_store(path: Path, calendar: ExchangeCalendar) -> DuckDBStore:
    """A small deterministic store: three symbols, four sessions, BBB missing 2% of minutes,
    plus quotes (AAA, BBB), trades (CCC) and AAA's extended-hours bars, so every kind of
    data a user stores is replayed by the check's rounds."""
    store = DuckDBStore(path)
    if store.count_bars() == 0:
        bars = synthetic_bars(calendar, CHECK_SYMBOLS, CHECK_START, CHECK_END, CHECK_GAPPY, seed=4)
        store.upsert_bars(bars)
        sessions = calendar.sessions(CHECK_START, CHECK_END)
        store.upsert_bars(BarBatch.from_bars(extended_bars(sessions)))
        store.upsert_quotes(check_quotes(bars))
        store.upsert_ticks(check_ticks(bars))
    return store


def extended_bars(sessions: Sequence[SessionInfo]) -> list[Bar]:
    """AAA's last pre-market and first after-hours minutes of each session."""
    out = []
    for s in sessions:
        for k in range(EXTENDED_MINUTES):
            for ts, px in ((s.open - (k + 1) * MINUTE, 40.0 + k), (s.close + k * MINUTE, 45.0 + k)):
                out.append(
                    Bar("AAA", ts, px, px + 0.5, px - 0.5, px + 0.25, 100 + k, regular=False)
                )
    return sorted(out, key=lambda b: b.ts)


def check_quotes(bars: BarBatch) -> QuoteBatch:
    """A quote bar around the close for AAA and BBB every ``QUOTE_EVERY``-th minute."""
    pick = np.isin(bars.symbol, ["AAA", "BBB"]) & ((bars.ts_us // MINUTE_US) % QUOTE_EVERY == 0)
    q = bars.take(pick)
    n = len(q)
    bid = np.stack([q.open, q.high, q.low, q.close], axis=1) - 0.01
    sizes = np.asarray(q.volume % 500 + 1, dtype=np.int64)
    return QuoteBatch(q.symbol, q.ts_us, bid, sizes, bid + 0.02, sizes + 1, np.ones(n, np.bool_))


def check_ticks(bars: BarBatch) -> list[Tick]:
    """Two CCC trades inside every ``TICK_EVERY``-th minute (at :10 and :40)."""
    pick = (bars.symbol == "CCC") & ((bars.ts_us // MINUTE_US) % TICK_EVERY == 0)
    out = []
    for ts, c, v in zip(bars.ts_us[pick].tolist(), bars.close[pick].tolist(),
                        bars.volume[pick].tolist(), strict=True):  # fmt: skip
        for seq, sec in ((2 * ts // MINUTE_US, 10), (2 * ts // MINUTE_US + 1, 40)):
            out.append(Tick("CCC", from_us(ts + sec * 1_000_000), c, v % 100 + 1, seq))
    return out


def store_checksum(store: Store) -> str:
    """SHA-256 of every bar and quote row, through the public Store API.

    Rows come back ordered by (ts, symbol), so equal digests mean equal tables;
    crash and re-import checks compare these.
    """
    digest = hashlib.sha256()
    symbols = store.symbols()
    bars = store.load_bars(symbols, *_ALL_TIME, regular_only=False)
    quotes = store.load_quotes(symbols, *_ALL_TIME, regular_only=False)
    digest.update("\x00".join(str(s) for s in bars.symbol).encode())
    for col in (bars.ts_us, bars.open, bars.high, bars.low, bars.close, bars.volume, bars.regular):
        digest.update(np.ascontiguousarray(col).tobytes())
    digest.update("\x00".join(str(s) for s in quotes.symbol).encode())
    for qcol in (quotes.ts_us, quotes.bid, quotes.bid_size, quotes.ask, quotes.ask_size):
        digest.update(np.ascontiguousarray(qcol).tobytes())
    return f"{len(bars)}:{len(quotes)}:{digest.hexdigest()[:16]}"


def drop_mask(batch: BarBatch, every: int) -> npt.NDArray[np.bool_]:
    """Which bars a lossy replay drops: about one minute in ``every``, staggered per symbol."""
    if every <= 0 or not len(batch):
        return np.zeros(len(batch), dtype=np.bool_)
    stagger = np.array([sum(map(ord, str(s))) for s in batch.symbol], dtype=np.int64)
    return np.asarray(((batch.ts_us // MINUTE_US) + stagger) % every == 0, dtype=np.bool_)


class FillSourceDown(ConnectionError):
    """What :class:`FaultyStore` raises from ``find_bars`` while it is 'down'."""


class FaultyStore(DuckDBStore):
    """A real DuckDB store with faults injected into the gap-fill and replay paths.

    - ``drop_every``: replay (``load_bar_rows``) loses about one regular bar in
      ``drop_every`` that ``find_bars`` still has, like a feed dropping messages; gap
      filling must recover every one of them (``dropped_keys`` says which).
    - ``fail_first`` / ``fail_every``: ``find_bars`` raises :class:`FillSourceDown`
      on its first N calls and on every k-th call after, like a store or network
      outage; the upkeep worker must count, retry and carry on.

    ``data_version`` changes on every call ("cannot tell what is new"), so every
    check with an open gap asks the fill source.
    """

    def __init__(
        self,
        path: str | Path,
        drop_every: int = 0,
        fail_first: int = 0,
        fail_every: int = 0,
    ) -> None:
        super().__init__(path, read_only=True)  # a replay and fill source only reads
        self.drop_every = drop_every
        self.fail_first = fail_first
        self.fail_every = fail_every
        self.find_calls = 0
        self.find_failures = 0
        self.dropped = 0
        self.dropped_keys: set[tuple[str, int]] = set()  # (symbol, ts_us) the replay lost
        self._version_calls = 0

    def data_version(self) -> int:
        self._version_calls += 1
        return -self._version_calls

    def load_bar_rows(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> tuple[npt.NDArray[np.intp], BarBatch]:
        rows, batch = super().load_bar_rows(symbols, start, end, regular_only)
        drop = drop_mask(batch, self.drop_every) & batch.regular  # gap filling is regular-only
        self.dropped += int(drop.sum())
        lost = batch.take(drop)
        self.dropped_keys.update(zip(lost.symbol.tolist(), lost.ts_us.tolist(), strict=True))
        return rows[~drop], batch.take(~drop)

    def find_bars(self, wanted: Sequence[tuple[str, int]]) -> BarBatch:
        self.find_calls += 1
        n = self.find_calls
        if n <= self.fail_first or (self.fail_every and n % self.fail_every == 0):
            self.find_failures += 1
            raise FillSourceDown(f"fill source down (call {n})")
        return super().find_bars(wanted)
