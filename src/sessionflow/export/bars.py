"""Stored 1m bars, or k-minute bars derived from them, exactly as a backtest delivers them.

No second implementation of the rules: each session's regular-session bars go
through the engine's own code, the session grid (``SessionData.grid_from_batch``)
and ``derive_grid`` (the reduction the upkeep worker runs window by window). So
windows are aligned to the session open, the last window of a session that ``k``
does not divide is short (``minutes`` says how long), a window without any 1m bar
gives no bar, and early closes end where the calendar says. Extended-hours bars
are not exported (the engine's derived bars never include them).
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sessionflow.corporate_actions.adjust import Action, due_actions
from sessionflow.corporate_actions.history import session_rows, stored_actions
from sessionflow.export.output import place, temporary_beside
from sessionflow.session_data import SessionData
from sessionflow.session_data.grid import BarGrid, derive_grid
from sessionflow.store import Store
from sessionflow.store.base import F64, I64, OBJ
from sessionflow.time_provider import SessionInfo

HEADER = ("symbol", "timestamp", "open", "high", "low", "close", "volume", "minutes")
FORMATS = ("csv", "parquet")
_INTERVAL = re.compile(r"^\s*(\d+)\s*(m|min|h)\s*$", re.I)
_MAX_INTERVAL = 24 * 60


def parse_interval(text: str) -> int:
    """``1m``, ``5m``, ``15m``, any ``Nm`` or ``Nh`` (1 minute to 24 hours) as minutes."""
    m = _INTERVAL.match(text)
    minutes = int(m[1]) * (60 if m[2].lower() == "h" else 1) if m else 0
    if not 1 <= minutes <= _MAX_INTERVAL:
        raise ValueError(
            f"--interval {text!r}: use minutes as Nm or hours as Nh, such as 1m, 5m, 15m or 1h "
            f"(1m to {_MAX_INTERVAL // 60}h)"
        )
    return minutes


# DuckDB's cache while streaming: a base, plus room for one session's query per symbol
# (390 rows of about 100 bytes each through the join and the fetch)
CACHE_BASE_MB = 192
CACHE_MB_PER_SYMBOL = 0.1


@contextlib.contextmanager
def bound_cache(store: Store, symbols: int) -> Iterator[None]:
    """Cap a DuckDB store's cache while a read by session runs (``DuckDBStore.
    limit_memory``), so memory stays one session's whatever the range; the old limit is
    put back after. Other stores are left as they are."""
    from sessionflow.store.duckdb_store import DuckDBStore

    if not isinstance(store, DuckDBStore):
        yield
        return
    before = store.limit_memory(f"{CACHE_BASE_MB + int(symbols * CACHE_MB_PER_SYMBOL)}MB")
    try:
        yield
    finally:
        store.limit_memory(before)


@dataclass(frozen=True)
class ExportChunk:
    """One session's bars, ordered by (open time, symbol), as columns."""

    symbol: OBJ
    ts_us: I64  # bar open, epoch microseconds UTC
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    minutes: I64

    def __len__(self) -> int:
        return len(self.ts_us)


def _as_of(
    data: SessionData,
    grid: BarGrid,
    session: SessionInfo,
    interval: int,
    as_of: date | None,
    mode: str,
    actions: Sequence[Action],
) -> BarGrid:
    """``grid`` at ``interval``, adjusted as a backtest's history is, by the same code:
    derived from the raw 1m bars, then scaled by the actions the as-of rule picks."""
    due = [] if as_of is None else due_actions(actions, session.date, as_of, mode)
    if not due:
        return grid if interval == 1 else derive_grid(grid, interval)
    data.set_history(session.date, grid)
    try:
        data.adjust_history(due, mode)
        return data.history[interval][session.date]
    finally:
        data.trim_history(())


def export_chunks(
    store: Store,
    symbols: Sequence[str],
    sessions: Iterable[SessionInfo],
    interval: int,
    as_of: date | None = None,
    adjustment: str = "raw",
) -> Iterator[ExportChunk]:
    """Session by session, so memory stays one session's bars whatever the range.

    With ``as_of``, sessions before it are adjusted for the actions up to it, exactly
    as a backtest's history on that session (docs/corporate-actions.md); renames are
    followed either way.
    """
    kept = (1,) if interval == 1 else (1, interval)
    data = SessionData(symbols, derived_intervals=(), historical_intervals=kept, trailing_days=0)
    actions, renames = stored_actions(store, data.names)
    for session in sessions:
        rows, batch = session_rows(store, data.names, session, renames)
        grid = _as_of(data, data.grid_from_batch(batch, session, rows), session, interval,
                      as_of, adjustment, actions)  # fmt: skip
        slots, rows = np.nonzero(grid.present)  # slot-major: by time, then symbol
        last = slots == grid.n_slots - 1
        yield ExportChunk(
            symbol=data.names_array[rows],
            ts_us=np.asarray(grid.slot_ts_us(slots), dtype=np.int64),
            open=grid.open[slots, rows],
            high=grid.high[slots, rows],
            low=grid.low[slots, rows],
            close=grid.close[slots, rows],
            volume=grid.volume[slots, rows],
            minutes=np.where(last, grid.last_minutes, grid.minutes).astype(np.int64),
        )


def write_bars(
    chunks: Iterable[ExportChunk], path: Path, fmt: str, replace: bool = False
) -> dict[str, int]:
    """Write all chunks to ``path`` (placed whole, or not at all); bars per symbol.

    The file is written to a temporary file of its own beside ``path`` and placed at
    the end (``export.output``), so a failure or Ctrl-C never leaves a half-written
    export under the asked name, and two exports never share a temporary file. An
    existing ``path`` is replaced only with ``replace``, else ``OutputExists``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: use csv or parquet")
    part = temporary_beside(path)
    counts: dict[str, int] = {}
    try:
        (_write_csv if fmt == "csv" else _write_parquet)(chunks, part, counts)
        place(part, path, replace)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return counts


def _count(chunk: ExportChunk, counts: dict[str, int]) -> None:
    names, n = np.unique(chunk.symbol.astype(str), return_counts=True)
    for name, k in zip(names.tolist(), n.tolist(), strict=True):
        counts[name] = counts.get(name, 0) + k


def _write_csv(chunks: Iterable[ExportChunk], part: Path, counts: dict[str, int]) -> None:
    with part.open("x", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(HEADER)
        for c in chunks:
            _count(c, counts)
            stamps = np.datetime_as_string(c.ts_us.astype("datetime64[us]"), unit="s")
            out.writerows(
                zip(
                    c.symbol.tolist(),
                    (f"{s}+00:00" for s in stamps.tolist()),
                    c.open.tolist(),
                    c.high.tolist(),
                    c.low.tolist(),
                    c.close.tolist(),
                    c.volume.tolist(),
                    c.minutes.tolist(),
                    strict=True,
                )
            )


SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.int64()),
        ("minutes", pa.int64()),
    ]
)


def chunk_table(c: ExportChunk) -> pa.Table:
    """One chunk as an Arrow table (``SCHEMA``), column by column: no Python object per bar
    (``frames.read_bars`` hands these to pandas or polars)."""
    cols = [c.symbol, c.ts_us, c.open, c.high, c.low, c.close, c.volume, c.minutes]
    arrays = [pa.array(v, type=f.type) for v, f in zip(cols, SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _write_parquet(chunks: Iterable[ExportChunk], part: Path, counts: dict[str, int]) -> None:
    with pq.ParquetWriter(part, SCHEMA) as writer:
        for c in chunks:
            _count(c, counts)
            writer.write_table(chunk_table(c))
