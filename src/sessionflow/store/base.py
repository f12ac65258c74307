"""The store interface and the columnar batches that cross it.

Batches are columnar (numpy arrays) so that loading, validating and, later,
vectorised replay never build one Python object per row unless a consumer asks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from sessionflow._bar_builder import BarRows
from sessionflow.models import Bar, Quote, Tick, from_us

if TYPE_CHECKING:
    from sessionflow.corporate_actions.adjust import Action, MapEntry

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]
OBJ = npt.NDArray[np.object_]


def _empty_i64() -> I64:
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class BarBatch:
    """1-minute bars as columns; ``ts_us`` is the bar open in epoch microseconds (UTC)."""

    symbol: OBJ
    ts_us: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    regular: BOOL = field(default_factory=lambda: np.empty(0, dtype=np.bool_))

    def __post_init__(self) -> None:
        if len(self.regular) != len(self.ts_us):
            object.__setattr__(self, "regular", np.ones(len(self.ts_us), dtype=np.bool_))

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def empty(cls) -> BarBatch:
        f = np.empty(0, dtype=np.float64)
        return cls(np.empty(0, dtype=object), _empty_i64(), f, f, f, f, _empty_i64())

    @classmethod
    def from_columns(
        cls,
        symbol: Any,
        ts_us: Any,
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any,
        regular: Any,
    ) -> BarBatch:
        """A batch from lists or arrays, each cast to its column's dtype (no copy if it is one)."""
        return cls(
            symbol=np.asarray(symbol, dtype=object),
            ts_us=np.asarray(ts_us, dtype=np.int64),
            open=np.asarray(open, dtype=np.float64),
            high=np.asarray(high, dtype=np.float64),
            low=np.asarray(low, dtype=np.float64),
            close=np.asarray(close, dtype=np.float64),
            volume=np.asarray(volume, dtype=np.int64),
            regular=np.asarray(regular, dtype=np.bool_),
        )

    @classmethod
    def from_bars(cls, bars: Sequence[Bar]) -> BarBatch:
        from sessionflow.models import to_us

        return cls.from_columns(
            [b.symbol for b in bars],
            [to_us(b.ts) for b in bars],
            [b.open for b in bars],
            [b.high for b in bars],
            [b.low for b in bars],
            [b.close for b in bars],
            [b.volume for b in bars],
            [b.regular for b in bars],
        )

    def take(self, index: npt.NDArray[np.intp] | BOOL | slice) -> BarBatch:
        return BarBatch(
            self.symbol[index],
            self.ts_us[index],
            self.open[index],
            self.high[index],
            self.low[index],
            self.close[index],
            self.volume[index],
            self.regular[index],
        )

    def iter_bars(self, filled: bool = False, minutes: int = 1) -> Iterator[Bar]:
        """The rows as Bar objects, each built in C when the caller takes it
        (:meth:`iter_rows`)."""
        return self.iter_rows(filled, minutes)

    def iter_rows(
        self,
        filled: bool = False,
        minutes: int = 1,
        event_type: type[tuple[Any, ...]] | None = None,
        time: datetime | None = None,
        tail: tuple[Any, ...] = (),
    ) -> BarRows:
        """The rows as Bars, or as ``event_type(bar, time, *tail)`` events, each built in
        C (``_bar_builder``) when the caller takes it: the per-bar consumer's cost over the
        columnar one is mostly building these (issue 23, item 2), and a bar the consumer
        drops dies at once, so replay does not feed the garbage collector (at 500 symbols,
        collections took 16% of per-bar replay when every instant's bars were built up
        front). Bars sharing a timestamp share one datetime."""
        return BarRows(
            Bar,
            self.symbol.tolist(),
            np.asarray(self.ts_us, np.int64),  # no copy: the columns' own dtypes
            from_us,
            np.asarray(self.open, np.float64),
            np.asarray(self.high, np.float64),
            np.asarray(self.low, np.float64),
            np.asarray(self.close, np.float64),
            np.asarray(self.volume, np.int64),
            np.asarray(self.regular, np.bool_).view(np.uint8),
            minutes,
            filled,
            event_type,
            time,
            tail,
        )

    def to_bars(self, filled: bool = False, minutes: int = 1) -> list[Bar]:
        return list(self.iter_bars(filled, minutes))


@dataclass(frozen=True)
class QuoteBatch:
    """One-minute quote bars as columns (bid/ask OHLC and last sizes)."""

    symbol: OBJ
    ts_us: I64
    bid: F64  # shape (n, 4): open, high, low, close
    bid_size: I64
    ask: F64
    ask_size: I64
    regular: BOOL

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def empty(cls) -> QuoteBatch:
        f = np.empty((0, 4), dtype=np.float64)
        b = np.empty(0, dtype=np.bool_)
        return cls(np.empty(0, dtype=object), _empty_i64(), f, _empty_i64(), f, _empty_i64(), b)

    def iter_quotes(self) -> Iterator[Quote]:
        for i in range(len(self.ts_us)):
            b, a = self.bid[i], self.ask[i]
            yield Quote(
                symbol=str(self.symbol[i]),
                ts=from_us(int(self.ts_us[i])),
                bid_open=float(b[0]),
                bid_high=float(b[1]),
                bid_low=float(b[2]),
                bid_close=float(b[3]),
                bid_size=int(self.bid_size[i]),
                ask_open=float(a[0]),
                ask_high=float(a[1]),
                ask_low=float(a[2]),
                ask_close=float(a[3]),
                ask_size=int(self.ask_size[i]),
                regular=bool(self.regular[i]),
            )


class Store(Protocol):
    """What the engine needs from storage. DuckDB is the default; others plug in here."""

    def upsert_bars(self, batch: BarBatch) -> int: ...

    def upsert_quotes(self, batch: QuoteBatch) -> int: ...

    def load_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> BarBatch: ...

    def load_bar_rows(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> tuple[npt.NDArray[np.intp], BarBatch]: ...

    def load_quotes(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> QuoteBatch: ...

    def upsert_ticks(self, ticks: Sequence[Tick]) -> int: ...

    def load_ticks(self, symbols: Sequence[str], start: datetime, end: datetime) -> list[Tick]: ...

    def find_bars(self, wanted: Sequence[tuple[str, int]]) -> BarBatch: ...

    def symbols(self) -> list[str]: ...

    def data_version(self) -> int | None: ...

    def count_bars(self) -> int: ...

    def stage_import(self) -> StagedImport: ...

    def load_actions(self, symbols: Sequence[str]) -> list[Action]:
        """Corporate actions of ``symbols`` by ex-date (none from a store that has none)."""
        ...

    def load_symbol_map(self, symbols: Sequence[str]) -> list[MapEntry]:
        """The tickers ``symbols`` traded under before (LEAN map files)."""
        ...

    def close(self) -> None: ...


class StoreWriteError(RuntimeError):
    """A write to the store failed (disk full, file too large, I/O error); it was rolled back."""


@dataclass
class MergeCounts:
    """What one imported file did to the store, row by row, as if files were applied in order."""

    new: int = 0
    unchanged: int = 0
    replaced: int = 0
    kept: int = 0  # a different value was offered but the earlier one stays (policy keep)


@dataclass(frozen=True)
class Conflict:
    """Two files of one import give different values for the same (symbol, minute)."""

    table: str
    symbol: str
    ts_us: int
    first: tuple[int, int]  # (file number, line)
    second: tuple[int, int]
    first_values: tuple[object, ...]
    second_values: tuple[object, ...]


class StagedImport(Protocol):
    """Rows of one import command, held aside until :meth:`merge` writes them in one go."""

    def add_bars(self, file: int, batch: BarBatch, lines: I64) -> None: ...

    def add_quotes(self, file: int, batch: QuoteBatch, lines: I64) -> None: ...

    def add_bars_of(self, files: I64, batch: BarBatch, lines: I64) -> None: ...

    def conflicts(self, limit: int = 5) -> tuple[int, list[Conflict]]: ...

    def merge(self, policy: str) -> dict[int, MergeCounts]: ...

    def close(self) -> None: ...


ROW_TABLES = {"bars": "bars_1m", "quotes": "quotes", "ticks": "ticks"}
"""The names :meth:`CommandStore.table_rows` reports, and the tables they count."""


class CommandStore(Store, Protocol):
    """What the commands use beyond the engine's :class:`Store`: a name, meta, inventories.

    Both backends (DuckDB file, PostgreSQL URL) provide it; ``open_store`` returns one.
    """

    path: str  # for messages: the file, or the URL without a password
    read_only: bool
    meta: dict[str, str]

    def count_quotes(self) -> int: ...

    def count_ticks(self) -> int: ...

    def table_rows(self) -> dict[str, int]: ...

    def table_count(self, table: str) -> int:
        """Rows of ``table`` (0 if an older store lacks it)."""
        ...

    def table_symbols(self, table: str) -> list[str]:
        """Distinct symbols of ``table``, sorted (none if an older store lacks it)."""
        ...

    def bar_days(self, tz: str) -> list[tuple[str, date, int, int]]: ...

    def last_close_before(self, symbol: str, ts: datetime) -> float | None: ...

    def write_actions(
        self, actions: Sequence[Action], entries: Sequence[MapEntry]
    ) -> dict[tuple[str, str], MergeCounts]: ...

    def fetched_sessions(self, source: str, symbols: Sequence[str]) -> set[tuple[str, date]]: ...

    def record_fetched(self, source: str, done: Sequence[tuple[str, date, int]]) -> None: ...


FETCH_LOG = "fetch_log"
FETCH_LOG_SQL = f"""CREATE TABLE IF NOT EXISTS {FETCH_LOG} (
    source VARCHAR NOT NULL, symbol VARCHAR NOT NULL, session DATE NOT NULL,
    rows BIGINT NOT NULL, fetched_at TIMESTAMPTZ NOT NULL
)"""
"""Which (symbol, session) a download (``sessionflow fetch``) completed, per source
(vendor, feed, hours): what makes a second run fetch only what is missing. Made on
first use, so no schema version is needed; a store without it has fetched nothing."""

CONFLICT_POLICIES = ("error", "replace", "keep")
"""What an import does with a row two files (or a file and the store) disagree on."""


def check_policy(policy: str) -> None:
    """Refuse an unknown conflict policy with the one message every entry point shows."""
    if policy not in CONFLICT_POLICIES:
        raise ValueError(
            f"--on-conflict {policy!r} is not a conflict policy: "
            f"use one of {', '.join(CONFLICT_POLICIES)}"
        )
