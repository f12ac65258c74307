"""The rows of one file checked and buffered as columns until a chunk is taken.

Rows arrive two ways: whole columns that the vectorised checks passed
(:meth:`RowChecker.add_columns`), and single rows checked here one at a time, which
give each refused row its reason and text (:meth:`RowChecker.add`). :meth:`take`
puts both in line order, decides duplicates and out-of-order minutes, and lists the
rejections in line order, as reading the file row by row would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.importer.report import MAX_LISTED, ImportError_, ImportReport
from sessionflow.importer.sequence import Accepted
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
from sessionflow.models import SymbolError, from_us, normalize_symbol, to_us
from sessionflow.store import BarBatch
from sessionflow.store.base import BOOL, F64, I64, OBJ
from sessionflow.time_provider import ExchangeCalendar

_FIELDS = ("n", "s", "t", "o", "h", "l", "c", "v", "x")  # line, symbol, us, prices, volume, ext


def one_minute(path: Path, line: int, minutes: object) -> None:
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


@dataclass
class Candidates:
    """Rows that passed every check but the duplicate/order one, as columns."""

    line: I64
    symbol: OBJ
    ts_us: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    extended: BOOL

    def take(self, keep: Any) -> Candidates:
        return Candidates(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


@dataclass
class _Refused:
    """Rows refused with one reason; their text is made only for the rows that are listed."""

    line: I64
    reason: str
    symbol: OBJ | None  # shown before the time (duplicates, out of order)
    ts_us: I64 | None  # shown in exchange time
    given: list[tuple[str, str]] | None  # or (reason, detail) per row, checked one by one


class RowChecker:
    """Validates rows and buffers the good ones as columns, per file."""

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
        self.shift_us = 0  # --time-is close: the time is one minute after the bar's open
        self.time_format: str | None = None  # --format: a strptime layout for text times
        self.sessions = SessionFilter(calendar)
        self.accepted = Accepted()
        self.symbols: dict[str, str | SymbolError] = {}
        self.rows: dict[str, list[Any]] = {k: [] for k in _FIELDS}
        self.columns: list[Candidates] = []
        self.refused: list[_Refused] = []
        self.problems: list[tuple[int, str, str]] = []

    @property
    def pending(self) -> int:
        return len(self.rows["n"]) + sum(len(c.line) for c in self.columns)

    def add(self, line: int, sym: object, when: object, cells: Sequence[object]) -> None:
        """Check one row (cells: open, high, low, close, volume); reject it or buffer it."""
        try:
            values = self._check(sym, when, cells)
        except RowProblem as p:
            self.problems.append((line, p.reason, p.detail))
            return
        except NaiveTime as naive:
            where = f"{self.path}: line {line}"
            raise ImportError_(naive.message(where, self.exchange_tz)) from None
        except NumericTime as numeric:
            raise ImportError_(numeric.message(f"{self.path}: line {line}")) from None
        for k, v in zip(_FIELDS, (line, *values), strict=True):
            self.rows[k].append(v)

    def reject(self, line: int, reason: str, detail: str) -> None:
        self.problems.append((line, reason, detail))

    def add_columns(self, rows: Candidates) -> None:
        """Rows the vectorised checks passed up to the session: classified here."""
        regular, extended = self.classify(rows.ts_us)
        outside = ~regular & ~extended
        if not self.keep_extended:
            outside |= extended
        if outside.any():
            self.refused.append(_Refused(rows.line[outside], "outside_session", None,
                                         rows.ts_us[outside], None))  # fmt: skip
            rows = rows.take(~outside)
            extended = extended[~outside]
        rows.extended = extended
        self.columns.append(rows)

    def classify(self, ts_us: I64) -> tuple[BOOL, BOOL]:
        """(regular, extended) per minute."""
        return self.sessions.classify_many(ts_us)

    def _check(self, raw_sym: object, when: object, cells: Sequence[object]) -> tuple[Any, ...]:
        sym = self._symbol(raw_sym)
        us = self._time(when) - self.shift_us
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
        return sym, us, o, h, lo, c, v, kind == "extended"

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

    def formatted(self, text: str) -> int | None:
        """A ``--format`` time as epoch microseconds, or None (the per-row path says why)."""
        try:
            return self._formatted(text)
        except (RowProblem, NaiveTime):
            return None

    def _formatted(self, text: str) -> int:
        assert self.time_format is not None
        try:
            ts = datetime.strptime(text.strip(), self.time_format)
        except ValueError:
            raise RowProblem(
                "unparsable_time", f"time {text!r} does not match --format {self.time_format!r}"
            ) from None
        if ts.tzinfo is not None:
            return check_range(to_us(ts), text)
        wall = (ts - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        if self.tz is None:
            raise NaiveTime(text, wall)
        try:
            return check_range(localize(check_range(wall, text), self.tz), text)
        except OverflowError:
            raise RowProblem("time_out_of_range", f"time {text!r}") from None

    def _time(self, when: object) -> int:
        if self.time_format is not None and self.time_kind == "text":
            if when is None:
                raise RowProblem("unparsable_time", "time is empty")
            return self._formatted(str(when))
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
        rows = self._candidates()
        order = np.argsort(rows.line, kind="stable")
        rows = rows.take(order)
        accepted, duplicate = self.accepted.decide(rows.symbol, rows.ts_us)
        for reason, mask in (("duplicate", duplicate), ("out_of_order", ~accepted & ~duplicate)):
            if mask.any():
                self.refused.append(_Refused(rows.line[mask], reason, rows.symbol[mask],
                                             rows.ts_us[mask], None))  # fmt: skip
        self._list_refused()
        rows = rows.take(accepted)
        self.report.extended += int(rows.extended.sum())
        batch = BarBatch(rows.symbol, rows.ts_us, rows.open, rows.high, rows.low, rows.close,
                         rows.volume, ~rows.extended)  # fmt: skip
        return batch, rows.line

    def _candidates(self) -> Candidates:
        r = self.rows
        own = Candidates(
            np.array(r["n"], dtype=np.int64), np.array(r["s"], dtype=object),
            np.array(r["t"], dtype=np.int64), np.array(r["o"], dtype=np.float64),
            np.array(r["h"], dtype=np.float64), np.array(r["l"], dtype=np.float64),
            np.array(r["c"], dtype=np.float64), np.array(r["v"], dtype=np.int64),
            np.array(r["x"], dtype=np.bool_),
        )  # fmt: skip
        for v in r.values():
            v.clear()
        parts = [*self.columns, own]
        self.columns = []
        return Candidates(*(np.concatenate([getattr(p, f) for p in parts])
                            for f in Candidates.__dataclass_fields__))  # fmt: skip

    def _list_refused(self) -> None:
        """Count every refused row of the chunk and list them in line order, up to the cap."""
        if self.problems:
            self.refused.append(_Refused(
                np.array([p[0] for p in self.problems], dtype=np.int64), "", None, None,
                [(p[1], p[2]) for p in self.problems],
            ))  # fmt: skip
            self.problems = []
        if not self.refused:
            return
        report, refused = self.report, self.refused
        self.refused = []
        lines = np.concatenate([r.line for r in refused])
        which = np.concatenate([np.full(len(r.line), i) for i, r in enumerate(refused)])
        at = np.concatenate([np.arange(len(r.line)) for r in refused])
        for r in refused:
            if r.given is None:
                report.rejected[r.reason] += len(r.line)
            else:
                report.rejected.update(reason for reason, _ in r.given)
        room = max(0, MAX_LISTED - len(report.rejections))
        for k in np.argsort(lines, kind="stable")[:room].tolist():
            r, i = refused[int(which[k])], int(at[k])
            if r.given is not None:
                reason, detail = r.given[i]
            else:
                assert r.ts_us is not None
                reason, detail = r.reason, self._show(int(r.ts_us[i]))
                if r.symbol is not None:
                    detail = f"{r.symbol[i]} {detail}"
            report.rejections.append((int(lines[k]), reason, detail))


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
