"""Import 1-minute bars from CSV or Parquet into the store, all-or-nothing.

Rows are validated first; bad rows are rejected with a reason and a line number
(CSV: physical line, header is line 1; Parquet: row number + 1). Good rows are
written in one transaction, so a file that cannot be read at all, or a store
error mid-write, leaves the store as it was.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sessionflow.importer.validate import SessionFilter, parse_time
from sessionflow.models import price_problem, to_us
from sessionflow.store import BarBatch, Store
from sessionflow.time_provider import ExchangeCalendar

_TIME_NAMES = ("timestamp", "ts", "time", "datetime", "date")
_PRICE_NAMES = ("open", "high", "low", "close", "volume")


class ImportError_(ValueError):
    """The file cannot be imported at all; nothing was written."""


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    imported: int = 0
    extended: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, detail

    def reject(self, line: int, reason: str, detail: str = "") -> None:
        self.rejected[reason] += 1
        self.rejections.append((line, reason, detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "imported": self.imported,
            "extended": self.extended,
            "rejected": dict(sorted(self.rejected.items())),
            "rejections": [{"line": ln, "reason": r, "detail": d} for ln, r, d in self.rejections],
        }


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
    missing = [n for n in (*_PRICE_NAMES, "time") if n not in index]
    if missing:
        raise ImportError_(
            f"{path}: missing column(s) {', '.join(missing)}; header is {list(header)}"
        )
    return index


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for row in reader:
                yield reader.line_num, row
    except UnicodeDecodeError as exc:
        raise ImportError_(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    except csv.Error as exc:
        raise ImportError_(f"{path}: unreadable CSV ({exc})") from exc


def _parquet_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise ImportError_(f"{path}: unreadable Parquet ({exc})") from exc
    cols = table.column_names
    yield 1, cols
    data = [table.column(c).to_pylist() for c in cols]
    for i in range(table.num_rows):
        row = []
        for col in data:
            v = col[i]
            row.append(v.isoformat() if hasattr(v, "isoformat") else ("" if v is None else str(v)))
        yield i + 2, row


def read_bar_file(
    path: Path,
    calendar: ExchangeCalendar,
    symbol: str | None = None,
    keep_extended: bool = False,
) -> tuple[BarBatch, ImportReport]:
    """Parse and validate a bar file; returns the good rows and the report. Writes nothing."""
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImportError_(f"{path}: file is empty")
    rows = _parquet_rows(path) if path.suffix.lower() == ".parquet" else _csv_rows(path)
    report = ImportReport(str(path))
    try:
        _, header = next(rows)
    except StopIteration:
        raise ImportError_(f"{path}: file has no header") from None
    col = _columns(path, header)
    if "symbol" not in col and not symbol:
        raise ImportError_(f"{path}: no symbol column; pass --symbol")
    width = len(header)
    sessions = SessionFilter(calendar)
    fixed = symbol.upper() if symbol else None
    out: dict[str, list[Any]] = {k: [] for k in ("symbol", "ts", "o", "h", "l", "c", "v", "reg")}
    last: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    for line, row in rows:
        if not row or all(not c.strip() for c in row):
            continue
        report.rows += 1
        if len(row) != width:
            report.reject(line, "malformed_row", f"{len(row)} fields, header has {width}")
            continue
        sym = fixed or row[col["symbol"]].strip().upper()
        if not sym:
            report.reject(line, "unknown_symbol", "empty symbol")
            continue
        try:
            ts = parse_time(row[col["time"]], calendar.tz)
        except ValueError:
            report.reject(line, "unparsable_time", row[col["time"]])
            continue
        try:
            o, h, lo, c, v = (float(row[col[n]]) for n in _PRICE_NAMES)
        except ValueError:
            report.reject(line, "bad_number", ",".join(row))
            continue
        problem = price_problem(o, h, lo, c, v)
        if problem is None and v != math.floor(v):
            problem = "bad_number"
        if problem:
            report.reject(line, problem, ",".join(row))
            continue
        us = to_us(ts)
        if us % 60_000_000:
            report.reject(line, "not_minute_aligned", ts.isoformat())
            continue
        kind = sessions.classify(ts)
        if kind == "outside" or (kind == "extended" and not keep_extended):
            report.reject(line, "outside_session", ts.isoformat())
            continue
        if (sym, us) in seen:
            report.reject(line, "duplicate", f"{sym} {ts.isoformat()}")
            continue
        if us < last.get(sym, us):
            report.reject(line, "out_of_order", f"{sym} {ts.isoformat()}")
            continue
        seen.add((sym, us))
        last[sym] = us
        for k, val in zip(out, (sym, us, o, h, lo, c, int(v), kind == "regular"), strict=True):
            out[k].append(val)
        report.extended += kind == "extended"
    batch = BarBatch(
        symbol=np.array(out["symbol"], dtype=object),
        ts_us=np.array(out["ts"], dtype=np.int64),
        open=np.array(out["o"], dtype=np.float64),
        high=np.array(out["h"], dtype=np.float64),
        low=np.array(out["l"], dtype=np.float64),
        close=np.array(out["c"], dtype=np.float64),
        volume=np.array(out["v"], dtype=np.int64),
        regular=np.array(out["reg"], dtype=np.bool_),
    )
    return batch, report


def import_bars(
    store: Store,
    path: Path,
    calendar: ExchangeCalendar,
    symbol: str | None = None,
    keep_extended: bool = False,
) -> ImportReport:
    """Validate ``path`` then upsert its good rows in one transaction."""
    batch, report = read_bar_file(path, calendar, symbol, keep_extended)
    report.imported = store.upsert_bars(batch)
    return report
