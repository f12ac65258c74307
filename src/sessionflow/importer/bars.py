"""Read and validate 1-minute bars from CSV or Parquet, streamed in chunks.

Bad rows are rejected with a reason and a line number (CSV: physical line, header
is line 1; Parquet: row number + 1). Good rows come out in chunks of at most
``CHUNK_ROWS`` so a file of any size is read in bounded memory; the command in
:mod:`sessionflow.importer.command` stages them and writes them in one transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.importer.checker import RowChecker, one_minute
from sessionflow.importer.csv_file import read_csv
from sessionflow.importer.dbn import iter_dbn_file
from sessionflow.importer.layout import Layout
from sessionflow.importer.report import MAX_LISTED, ImportError_, ImportReport
from sessionflow.importer.validate import RowProblem
from sessionflow.models import SymbolError, normalize_symbol
from sessionflow.store import BarBatch
from sessionflow.store.base import I64
from sessionflow.time_provider import ExchangeCalendar

__all__ = ["MAX_LISTED", "ImportError_", "ImportReport", "RowChecker", "iter_bar_file"]

_PRICE_NAMES = ("open", "high", "low", "close", "volume")
CHUNK_ROWS = 65_536
MAX_LINE_CHARS = 1 << 20  # a bar row is under 200 characters; a longer line is not one
MAX_ROW_GROUP_BYTES = 512 << 20  # Parquet is read a row group at a time (uncompressed size)


def _columns(path: Path, header: Sequence[str], layout: Layout | None = None) -> dict[str, int]:
    return (layout or Layout()).columns(path, header)


def _fixed_symbol(path: Path, symbol: str | None, has_column: bool) -> str | None:
    if symbol is None:
        if not has_column:
            raise ImportError_(f"{path}: no symbol column; pass --symbol")
        return None
    if has_column:
        raise ImportError_(
            f"{path}: has a symbol column and --symbol {symbol} was given; "
            "use one or the other (drop --symbol to import the column's symbols)"
        )
    try:
        return normalize_symbol(symbol)
    except SymbolError as exc:
        raise ImportError_(f"{path}: --symbol: {exc}") from None


def iter_bar_file(
    path: Path,
    calendar: ExchangeCalendar,
    report: ImportReport,
    symbol: str | None = None,
    keep_extended: bool = False,
    tz: ZoneInfo | None = None,
    epoch: str | None = None,
    layout: Layout | None = None,
) -> Iterator[tuple[BarBatch, I64]]:
    """Validate ``path`` in chunks, filling ``report``; yields the good rows. Writes nothing.

    ``layout`` (``--columns``, ``--preset``, ``--time-is``) names the columns; its epoch
    unit stands in for ``epoch`` when that is None.
    """
    layout = layout or Layout()
    epoch = epoch or layout.epoch
    if path.is_dir():
        raise ImportError_(
            f"{path}: is a directory; import bars takes CSV or Parquet files (a shell glob "
            f"such as {path / '*.csv'} names them); LEAN zips: sessionflow import lean {path}"
        )
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImportError_(f"{path}: file is empty")
    if layout.dbn:
        yield from iter_dbn_file(path, calendar, report, symbol, keep_extended, tz, CHUNK_ROWS)
        return
    if path.name.lower().endswith((".dbn", ".dbn.zst")):
        raise ImportError_(f"{path}: a Databento DBN file: pass --preset databento")
    if path.suffix.lower() == ".parquet":
        yield from _parquet(path, calendar, report, symbol, keep_extended, tz, epoch, layout)
    else:
        yield from _csv(path, calendar, report, symbol, keep_extended, tz, epoch, layout)


def _csv(
    path: Path,
    calendar: ExchangeCalendar,
    report: ImportReport,
    symbol: str | None,
    keep_extended: bool,
    tz: ZoneInfo | None,
    epoch: str | None,
    layout: Layout,
) -> Iterator[tuple[BarBatch, I64]]:
    def columns(header: Sequence[str]) -> tuple[dict[str, int], str | None]:
        col = _columns(path, header, layout)
        return col, _fixed_symbol(path, symbol, "symbol" in col)

    check = RowChecker(path, report, calendar, tz, keep_extended, epoch=epoch)
    check.shift_us, check.time_format = layout.shift_us, layout.time_format
    try:
        yield from read_csv(path, check, columns, MAX_LINE_CHARS, CHUNK_ROWS)
    except UnicodeDecodeError as exc:
        raise ImportError_(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    except csv.Error as exc:
        raise ImportError_(f"{path}: unreadable CSV ({exc})") from exc


_UNIT_US = {"s": 1_000_000, "ms": 1000, "us": 1}


def _check_row_groups(path: Path, metadata: Any, limit: int) -> None:
    """Refuse a row group too large to hold: Parquet is decoded a row group at a time."""
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        if group.total_byte_size > limit:
            raise ImportError_(
                f"{path}: row group {i} holds {group.num_rows:,} rows "
                f"({group.total_byte_size:,} bytes uncompressed), above the limit of "
                f"{limit:,} bytes read at once; rewrite it with smaller row groups "
                "(pyarrow.parquet.write_table(..., row_group_size=1_000_000))"
            )


def _parquet(
    path: Path,
    calendar: ExchangeCalendar,
    report: ImportReport,
    symbol: str | None,
    keep_extended: bool,
    tz: ZoneInfo | None,
    epoch: str | None,
    layout: Layout,
) -> Iterator[tuple[BarBatch, I64]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except Exception as exc:
        raise ImportError_(f"{path}: unreadable Parquet ({exc})") from exc
    _check_row_groups(path, pf.metadata, MAX_ROW_GROUP_BYTES)
    col = _columns(path, schema.names, layout)
    fixed = _fixed_symbol(path, symbol, "symbol" in col)
    kind = _parquet_time_kind(path, schema.field(col["time"]), epoch)
    check = RowChecker(path, report, calendar, tz, keep_extended, kind, epoch)
    check.shift_us, check.time_format = layout.shift_us, layout.time_format
    line = 1
    try:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            cols = [batch.column(j) for j in range(batch.num_columns)]
            times: list[Any] = _time_values(cols[col["time"]], kind)
            syms = cols[col["symbol"]].to_pylist() if fixed is None else None
            values = [cols[col[n]].to_pylist() for n in _PRICE_NAMES]
            minutes = cols[col["minutes"]].to_pylist() if "minutes" in col else None
            for i in range(batch.num_rows):
                line += 1
                if minutes is not None:
                    one_minute(path, line, minutes[i])
                report.rows += 1
                when = times[i]
                if isinstance(when, RowProblem):
                    report.reject(line, when.reason, when.detail)
                    continue
                sym = fixed if syms is None else syms[i]
                check.add(line, sym, when, [v[i] for v in values])
            yield check.take()
    except (OSError, pa.ArrowException) as exc:
        raise ImportError_(f"{path}: unreadable Parquet ({exc})") from exc


def _parquet_time_kind(path: Path, time_field: Any, epoch: str | None) -> str:
    """How the time column is read; an integer column needs --epoch, a timestamp refuses it."""
    import pyarrow as pa

    t = time_field.type
    if pa.types.is_timestamp(t):
        if epoch is not None:
            raise ImportError_(
                f"{path}: time column {time_field.name!r} is a timestamp ({t}); drop --epoch, "
                "which is for integer time columns"
            )
        return "wall_us" if t.tz is None else "utc_us"
    if pa.types.is_integer(t) and epoch is None:
        raise ImportError_(
            f"{path}: time column {time_field.name!r} holds integers ({t}); pass --epoch s, ms, "
            "us or ns (its unit, counted from 1970-01-01 UTC)"
        )
    return "text"


def _time_values(column: Any, kind: str) -> list[Any]:
    """Timestamp columns as integer microseconds (exact, any year); others as Python values."""
    import pyarrow as pa

    if kind == "text":  # also integers under --epoch
        return [v.isoformat() if hasattr(v, "isoformat") else v for v in column.to_pylist()]
    unit = column.type.unit
    raw = column.cast(pa.int64()).to_pylist()
    if unit == "ns":
        return [
            None if v is None
            else RowProblem("not_minute_aligned", f"time {v} ns has a sub-microsecond part")
            if v % 1000 else v // 1000
            for v in raw
        ]  # fmt: skip
    return [None if v is None else v * _UNIT_US[unit] for v in raw]


def read_bar_file(
    path: Path,
    calendar: ExchangeCalendar,
    symbol: str | None = None,
    keep_extended: bool = False,
    tz: ZoneInfo | None = None,
    epoch: str | None = None,
) -> tuple[BarBatch, ImportReport]:
    """The whole file's good rows in memory, and the report (for tests and small files)."""
    report = ImportReport(str(path))
    chunks = [b for b, _ in iter_bar_file(path, calendar, report, symbol, keep_extended, tz, epoch)]
    report.imported = sum(len(c) for c in chunks)
    return concat_bars(chunks), report


def concat_bars(chunks: Sequence[BarBatch]) -> BarBatch:
    if not chunks:
        return BarBatch.empty()
    return BarBatch(
        *(
            np.concatenate([getattr(c, f) for c in chunks])
            for f in ("symbol", "ts_us", "open", "high", "low", "close", "volume", "regular")
        )
    )
