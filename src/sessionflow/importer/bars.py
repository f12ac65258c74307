"""Read and validate 1-minute bars from CSV or Parquet, streamed in chunks.

Bad rows are rejected with a reason and a line number (CSV: physical line, header
is line 1; Parquet: row number + 1). Good rows come out in chunks of at most
``CHUNK_ROWS`` so a file of any size is read in bounded memory; the command in
:mod:`sessionflow.importer.command` stages them and writes them in one transaction.
"""

from __future__ import annotations

import csv
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.importer.validate import (
    NaiveTime,
    NumericTime,
    RowProblem,
    SessionFilter,
    check_prices,
    check_range,
    is_integer_text,
    latest_bar_open_us,
    localize,
    parse_epoch,
    parse_number,
    parse_time,
    parse_volume,
)
from sessionflow.models import SymbolError, from_us, normalize_symbol
from sessionflow.store import BarBatch
from sessionflow.store.base import I64
from sessionflow.time_provider import ExchangeCalendar

_TIME_NAMES = ("timestamp", "ts", "time", "datetime", "date")
_PRICE_NAMES = ("open", "high", "low", "close", "volume")
CHUNK_ROWS = 65_536
MAX_LISTED = 10_000  # rejections listed per file; all are counted
MAX_LINE_CHARS = 1 << 20  # a bar row is under 200 characters; a longer line is not one
MAX_ROW_GROUP_BYTES = 512 << 20  # Parquet is read a row group at a time (uncompressed size)


class ImportError_(ValueError):
    """The file cannot be imported at all; nothing was written."""


@dataclass
class ImportReport:
    """One file: rows read, accepted (new, unchanged, replaced, kept) and rejected by reason."""

    file: str
    rows: int = 0
    imported: int = 0  # rows accepted: new + unchanged + replaced + kept
    extended: int = 0
    new: int = 0
    unchanged: int = 0
    replaced: int = 0
    kept: int = 0  # differing rows not written (--on-conflict keep): an earlier value stays
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, detail
    committed: bool = False
    error: str | None = None

    def reject(self, line: int, reason: str, detail: str = "") -> None:
        self.rejected[reason] += 1
        if len(self.rejections) < MAX_LISTED:
            self.rejections.append((line, reason, detail))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "rows": self.rows,
            "imported": self.imported,
            "new": self.new,
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "kept": self.kept,
            "extended": self.extended,
            "committed": self.committed,
            "rejected": dict(sorted(self.rejected.items())),
            "rejections": [{"line": ln, "reason": r, "detail": d} for ln, r, d in self.rejections],
        }
        unlisted = sum(self.rejected.values()) - len(self.rejections)
        if unlisted:
            out["rejections_not_listed"] = unlisted
        if self.error is not None:
            out["error"] = self.error
        return out


def _one_minute(path: Path, line: int, minutes: object) -> None:
    """A ``minutes`` column other than 1 means longer bars: the whole file is refused.

    Read as 1-minute bars, a 5-minute file would store each bar at its open and leave
    four gaps after it, so this is never a row rejection but an error before writing.
    """
    text = str(minutes).strip()
    if text not in ("1", "1.0"):
        raise ImportError_(
            f"{path}: line {line}: minutes {text!r}: this file holds {text}-minute bars; "
            "import takes 1-minute bars (sessionflow derives longer ones)"
        )


def _columns(path: Path, header: Sequence[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    for want in _PRICE_NAMES:
        if want in names:
            index[want] = names.index(want)
    time_col = next((n for n in _TIME_NAMES if n in names), None)
    if time_col is not None:
        index["time"] = names.index(time_col)
    if "symbol" in names:
        index["symbol"] = names.index("symbol")
    if "minutes" in names:  # what `export bars` writes: the bar length in minutes
        index["minutes"] = names.index("minutes")
    missing = [n for n in (*_PRICE_NAMES, "time") if n not in index]
    if missing:
        raise ImportError_(
            f"{path}: missing column(s) {', '.join(missing)}; header is {list(header)}"
        )
    return index


class RowChecker:
    """Validates rows one by one and buffers the good ones as columns, per file."""

    def __init__(
        self,
        path: Path,
        report: ImportReport,
        calendar: ExchangeCalendar,
        tz: ZoneInfo | None,
        keep_extended: bool,
        time_kind: str = "text",  # "text", "utc_us" (tz-aware column) or "wall_us" (naive)
        epoch: str | None = None,  # --epoch: integer times in this unit since 1970 UTC
        now_us: int | None = None,  # the wall clock at the import; None reads it here
    ) -> None:
        self.path, self.report, self.tz, self.keep_extended = path, report, tz, keep_extended
        self.latest_open_us = latest_bar_open_us(now_us)
        self.epoch = epoch
        self.exchange_tz = calendar.tz
        self.time_kind = time_kind
        self.sessions = SessionFilter(calendar)
        self.accepted: dict[str, array[int]] = {}  # per symbol, increasing: for duplicates
        self.symbols: dict[str, str | SymbolError] = {}
        self.out: dict[str, list[Any]] = {k: [] for k in ("s", "t", "o", "h", "l", "c", "v", "r")}
        self.lines: list[int] = []

    @property
    def pending(self) -> int:
        return len(self.out["t"])

    def add(self, line: int, sym: object, when: object, cells: Sequence[object]) -> None:
        """Check one row (cells: open, high, low, close, volume); reject it or buffer it."""
        try:
            self._add(sym, when, cells)
            self.lines.append(line)
        except RowProblem as p:
            self.report.reject(line, p.reason, p.detail)
        except NaiveTime as naive:
            where = f"{self.path}: line {line}"
            raise ImportError_(naive.message(where, self.exchange_tz)) from None
        except NumericTime as numeric:
            raise ImportError_(numeric.message(f"{self.path}: line {line}")) from None

    def _add(self, raw_sym: object, when: object, cells: Sequence[object]) -> None:
        sym = self._symbol(raw_sym)
        us = self._time(when)
        o = parse_number("open", cells[0])
        h = parse_number("high", cells[1])
        lo = parse_number("low", cells[2])
        c = parse_number("close", cells[3])
        try:
            check_prices(o, h, lo, c, cells)
        except RowProblem as p:
            if not p.detail:  # a relation between fields: show the row
                raise RowProblem(p.reason, ",".join(str(x) for x in (when, *cells))) from None
            raise
        v = parse_volume(cells[4])
        if us % 60_000_000:
            raise RowProblem("not_minute_aligned", self._show(us))
        if us > self.latest_open_us:
            raise RowProblem("from_future", f"{self._show(us)} has not ended yet")
        kind = self.sessions.classify_us(us)
        if kind == "outside" or (kind == "extended" and not self.keep_extended):
            raise RowProblem("outside_session", self._show(us))
        done = self.accepted.get(sym)
        if done is not None and done[-1] >= us:
            if done[-1] == us or self._seen(done, us):
                raise RowProblem("duplicate", f"{sym} {self._show(us)}")
            raise RowProblem("out_of_order", f"{sym} {self._show(us)}")
        if done is None:
            done = self.accepted[sym] = array("q")
        done.append(us)
        out = self.out
        out["s"].append(sym)
        out["t"].append(us)
        out["o"].append(o)
        out["h"].append(h)
        out["l"].append(lo)
        out["c"].append(c)
        out["v"].append(v)
        out["r"].append(kind == "regular")
        if kind == "extended":
            self.report.extended += 1

    @staticmethod
    def _seen(done: array[int], us: int) -> bool:
        i = bisect_left(done, us)
        return i < len(done) and done[i] == us

    def _symbol(self, raw: object) -> str:
        got = self.symbols.get(raw) if isinstance(raw, str) else None
        if got is None:
            try:
                got = normalize_symbol(raw)
            except SymbolError as exc:
                got = exc
            if isinstance(raw, str) and len(self.symbols) < 100_000:
                self.symbols[raw] = got
        if isinstance(got, SymbolError):
            raise RowProblem("bad_symbol", str(got))
        return got

    def _time(self, when: object) -> int:
        if self.epoch is not None and self.time_kind == "text":
            return parse_epoch(when, self.epoch)
        if self.time_kind == "text" or not isinstance(when, int):
            if when is None:
                raise RowProblem("unparsable_time", "time is empty")
            if is_integer_text(when):
                raise NumericTime(str(when).strip())
            return parse_time(str(when), self.tz)
        text = str(when)
        if self.time_kind == "utc_us":
            return check_range(when, _us_text(when, text))
        if self.tz is None:
            raise NaiveTime(_wall_text(when), when)
        try:
            return check_range(localize(when, self.tz), _wall_text(when))
        except OverflowError:
            raise RowProblem("time_out_of_range", f"time {_wall_text(when)!r}") from None

    def _show(self, us: int) -> str:
        return from_us(us).astimezone(self.exchange_tz).isoformat()

    def take(self) -> tuple[BarBatch, I64]:
        """The buffered good rows as a batch, and their lines; the buffer starts empty again."""
        out = self.out
        lines = np.array(self.lines, dtype=np.int64)
        self.lines.clear()
        batch = BarBatch.from_columns(*(out[k] for k in ("s", "t", "o", "h", "l", "c", "v", "r")))
        for v in out.values():
            v.clear()
        return batch, lines


def _us_text(us: int, fallback: str) -> str:
    try:
        return from_us(us).isoformat()
    except OverflowError:
        return fallback


def _wall_text(wall_us: int) -> str:
    try:
        return from_us(wall_us).replace(tzinfo=None).isoformat(sep=" ")
    except OverflowError:
        return f"{wall_us} us since 1970-01-01 (no zone)"


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
) -> Iterator[tuple[BarBatch, I64]]:
    """Validate ``path`` in chunks, filling ``report``; yields the good rows. Writes nothing."""
    if path.is_dir():
        raise ImportError_(
            f"{path}: is a directory; import bars takes CSV or Parquet files (a shell glob "
            f"such as {path / '*.csv'} names them); LEAN zips: sessionflow import lean {path}"
        )
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImportError_(f"{path}: file is empty")
    if path.suffix.lower() == ".parquet":
        yield from _parquet(path, calendar, report, symbol, keep_extended, tz, epoch)
    else:
        yield from _csv(path, calendar, report, symbol, keep_extended, tz, epoch)


def _csv(
    path: Path,
    calendar: ExchangeCalendar,
    report: ImportReport,
    symbol: str | None,
    keep_extended: bool,
    tz: ZoneInfo | None,
    epoch: str | None,
) -> Iterator[tuple[BarBatch, I64]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # a BOM is not the header
            lines = _bounded_lines(path, fh, MAX_LINE_CHARS)
            reader = csv.reader(lines)
            header = next(reader, None)
            if header is None:
                raise ImportError_(f"{path}: file has no header")
            col = _columns(path, header)
            fixed = _fixed_symbol(path, symbol, "symbol" in col)
            width = len(header)
            t, s = col["time"], col.get("symbol", 0)
            prices = [col[n] for n in _PRICE_NAMES]
            check = RowChecker(path, report, calendar, tz, keep_extended, epoch=epoch)
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                report.rows += 1
                if len(row) != width:
                    report.reject(
                        reader.line_num, "malformed_row", f"{len(row)} fields, header has {width}"
                    )
                    continue
                if "minutes" in col:
                    _one_minute(path, reader.line_num, row[col["minutes"]])
                sym = fixed if fixed is not None else row[s]
                check.add(reader.line_num, sym, row[t], [row[j] for j in prices])
                if check.pending >= CHUNK_ROWS:
                    yield check.take()
            yield check.take()
    except UnicodeDecodeError as exc:
        raise ImportError_(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    except csv.Error as exc:
        raise ImportError_(f"{path}: unreadable CSV ({exc})") from exc


_UNIT_US = {"s": 1_000_000, "ms": 1000, "us": 1}


def _bounded_lines(path: Path, fh: TextIO, limit: int) -> Iterator[str]:
    """The file's lines, refusing one longer than ``limit`` before it is read whole.

    Iterating a text file reads a line of any length into memory: an 800 MB line
    (a file without line breaks, a wrong file) reached 1.9 GB before ``csv`` refused it.
    """
    number = 0
    while line := fh.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise ImportError_(
                f"{path}: line {number} is longer than {limit:,} characters (a bar row is "
                "under 200): not a bar CSV, or a file without line breaks"
            )
        yield line


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
) -> Iterator[tuple[BarBatch, I64]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except Exception as exc:
        raise ImportError_(f"{path}: unreadable Parquet ({exc})") from exc
    _check_row_groups(path, pf.metadata, MAX_ROW_GROUP_BYTES)
    col = _columns(path, schema.names)
    fixed = _fixed_symbol(path, symbol, "symbol" in col)
    kind = _parquet_time_kind(path, schema.field(col["time"]), epoch)
    check = RowChecker(path, report, calendar, tz, keep_extended, kind, epoch)
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
                    _one_minute(path, line, minutes[i])
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
