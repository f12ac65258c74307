"""Importing corporate actions: LEAN factor/map files or a plain actions CSV.

Like bar imports: every file is read and checked first (rejections with line and
reason), then everything is written in one transaction, or nothing if a file could
not be read or gave no good row. Counts are new, unchanged and replaced per file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sessionflow.corporate_actions.adjust import Action, MapEntry, factor_problem
from sessionflow.corporate_actions.lean_files import (
    Parsed,
    parse_day,
    read_factor_file,
    read_map_file,
)
from sessionflow.importer.bars import ImportError_, ImportReport
from sessionflow.models import MAX_PRICE, SymbolError, normalize_symbol
from sessionflow.store import CommandStore
from sessionflow.time_provider import ExchangeCalendar


@dataclass
class ActionsFile:
    """One input file: its report, and what it gives for the store."""

    report: ImportReport
    kind: str  # "actions" or "map"
    symbols: set[str] = field(default_factory=set)
    parsed: Parsed = field(default_factory=Parsed)


def _report(path: Path, parsed: Parsed) -> ImportReport:
    report = ImportReport(str(path), rows=parsed.rows)
    for line, reason, detail in parsed.rejections:
        report.reject(line, reason, detail)
    return report


def _symbol_of(path: Path) -> str:
    try:
        return normalize_symbol(path.stem)
    except SymbolError as exc:
        raise ImportError_(f"{path}: file name gives no symbol: {exc}") from None


def factor_files(directory: Path, calendar: ExchangeCalendar) -> list[ActionsFile]:
    """``DIR/factor_files/*.csv`` and ``DIR/map_files/*.csv`` (LEAN's layout)."""
    factors, maps = directory / "factor_files", directory / "map_files"
    if not factors.is_dir() and not maps.is_dir():
        raise ImportError_(f"{directory}: no factor_files/ or map_files/ folder (LEAN layout)")

    def next_session(day: date) -> date:
        try:
            following = calendar.next_session(day)
        except (ValueError, KeyError, IndexError):
            following = None
        return following.date if following is not None else day

    out: list[ActionsFile] = []
    for kind, folder in (("actions", factors), ("map", maps)):
        for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
            sym = _symbol_of(path)
            try:
                parsed = (
                    read_factor_file(path, sym, next_session)
                    if kind == "actions"
                    else read_map_file(path, sym)
                )
            except (OSError, UnicodeDecodeError) as exc:
                raise ImportError_(f"{path}: cannot read: {exc}") from None
            out.append(ActionsFile(_report(path, parsed), kind, {sym}, parsed))
    return out


def actions_csv(path: Path, store: CommandStore, calendar: ExchangeCalendar) -> ActionsFile:
    """``symbol, ex_date, split, dividend`` rows (header optional); dividends need a prior close."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            lines = list(enumerate(csv.reader(fh), 1))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportError_(f"{path}: cannot read: {exc}") from None
    parsed = Parsed()
    seen: dict[tuple[str, date], int] = {}
    for n, cells in lines:
        cells = [c.strip() for c in cells]
        if not any(cells) or (n == 1 and cells[0].lower() == "symbol"):
            continue
        parsed.rows += 1
        problem = _action_row(cells, store, calendar, parsed, seen, n)
        if problem is not None:
            parsed.rejections.append((n, *problem))
    return ActionsFile(_report(path, parsed), "actions", {a.symbol for a in parsed.actions}, parsed)


def _action_row(
    cells: list[str],
    store: CommandStore,
    calendar: ExchangeCalendar,
    parsed: Parsed,
    seen: dict[tuple[str, date], int],
    n: int,
) -> tuple[str, str] | None:
    """Add one row's action to ``parsed``, or return (reason, detail)."""
    if len(cells) < 3 or len(cells) > 4:
        return "malformed_row", f"{len(cells)} fields, want symbol, ex_date, split, dividend"
    try:
        sym = normalize_symbol(cells[0])
    except SymbolError as exc:
        return "bad_symbol", str(exc)
    try:
        ex = parse_day(cells[1])
    except ValueError:
        return "unparsable_date", f"ex_date {cells[1]!r}"
    try:
        split = float(cells[2]) if cells[2] else 1.0
        cash = float(cells[3]) if len(cells) > 3 and cells[3] else 0.0
    except ValueError:
        return "bad_number", ",".join(cells[2:])
    problem = factor_problem(split, 1.0)
    if problem is not None:
        return "bad_factor", problem
    if not (0 <= cash < MAX_PRICE):
        return "bad_factor", f"dividend {cells[3]!r} must be >= 0"
    if not calendar.is_session(ex):
        return "outside_session", f"ex_date {ex} is not a {calendar.name} session"
    if (sym, ex) in seen:
        return "duplicate", f"{sym} {ex} already on line {seen[(sym, ex)]}"
    factor = 1.0
    if cash:
        close = store.last_close_before(sym, calendar.session(ex).open)
        if close is None:
            return (
                "no_reference_close",
                f"{sym}: no stored bar before {ex} to turn {cash} into a factor",
            )
        if cash >= close:
            return "bad_factor", f"dividend {cash} is not below the previous close {close}"
        factor = 1.0 - cash / close
        problem = factor_problem(split, factor)
        if problem is not None:
            return "bad_factor", f"{problem}; reference close {close:g}"
    seen[(sym, ex)] = n
    parsed.actions.append(Action(sym, ex, split, cash, factor))
    return None


def write(store: CommandStore, files: list[ActionsFile], strict: bool = False) -> str | None:
    """Write every file's rows in one transaction; the reason nothing was written, or None."""
    for f in files:
        good = len(f.parsed.actions) + len(f.parsed.entries)
        f.report.imported = good
        if not good and f.report.rows:
            f.report.error = f"{f.report.file}: no importable row"
        elif not f.report.rows:
            f.report.error = f"{f.report.file}: no rows"
        elif strict and f.report.rejected:
            f.report.error = (
                f"{f.report.file}: {sum(f.report.rejected.values())} rejected (--strict)"
            )
    error = next((f.report.error for f in files if f.report.error), None)
    if error is not None:
        return error
    counts = store.write_actions(
        [a for f in files for a in f.parsed.actions], [e for f in files for e in f.parsed.entries]
    )
    for f in files:
        for sym in f.symbols:
            c = counts.get((f.kind, sym))
            if c is not None:
                f.report.new += c.new
                f.report.unchanged += c.unchanged
                f.report.replaced += c.replaced
        f.report.committed = True
    return None


__all__ = ["ActionsFile", "MapEntry", "actions_csv", "factor_files", "write"]
