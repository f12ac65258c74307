"""Reading LEAN ``factor_files/<sym>.csv`` and ``map_files/<sym>.csv`` into actions and renames.

A factor-file row ``yyyymmdd, price_factor, split_factor, reference_price`` holds the
cumulative factors for every date up to and including its own date (LEAN's
``FactorFile`` takes the first row dated on or after the wanted date). So the change
between row i and row i+1 is one action whose ex-date is the session after row i's
date: ``split = split_factor[i+1] / split_factor[i]`` and
``dividend_factor = price_factor[i] / price_factor[i+1]``; the cash dividend is
``reference_price[i] * (1 - dividend_factor)`` (the reference is that day's close).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

from sessionflow.corporate_actions.adjust import Action, MapEntry, factor_problem

_SAME = 1e-9


@dataclass
class Parsed:
    """Good rows of one file plus its rejections as (line, reason, detail)."""

    actions: list[Action] = field(default_factory=list)
    entries: list[MapEntry] = field(default_factory=list)
    rows: int = 0
    rejections: list[tuple[int, str, str]] = field(default_factory=list)


def snap_ratio(ratio: float) -> float:
    """A split ratio from 7-digit factors (6.9999972) as the ratio it stands for (7.0).

    Factor files round to 7 significant digits, so a ratio within 1e-5 of a fraction
    with a small denominator (7/1, 3/2, 1/10) is that fraction.
    """
    near = Fraction(ratio).limit_denominator(100)
    return float(near) if abs(float(near) - ratio) <= 1e-5 * ratio else ratio


def parse_day(text: str) -> date:
    """``yyyymmdd`` (LEAN) or ``yyyy-mm-dd``; ValueError otherwise."""
    text = text.strip()
    fmt = "%Y%m%d" if len(text) == 8 and text.isdigit() else "%Y-%m-%d"
    return datetime.strptime(text, fmt).date()


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    text = path.read_text(encoding="utf-8-sig")
    return [(n, [c.strip() for c in line.split(",")]) for n, line in enumerate(text.splitlines(), 1)
            if line.strip()]  # fmt: skip


def read_factor_file(path: Path, symbol: str, next_session: Callable[[date], date]) -> Parsed:
    """Actions of ``symbol`` from a LEAN factor file; bad rows are rejected with reasons."""
    out = Parsed()
    rows: list[tuple[int, date, float, float, float]] = []
    for n, cells in _lines(path):
        out.rows += 1
        if len(cells) < 3:
            out.rejections.append((n, "malformed_row", f"{len(cells)} fields, want 4"))
            continue
        try:
            day = parse_day(cells[0])
        except ValueError:
            out.rejections.append((n, "unparsable_date", f"date {cells[0]!r}"))
            continue
        try:
            pf, sf = float(cells[1]), float(cells[2])
            ref = float(cells[3]) if len(cells) > 3 and cells[3] else 0.0
        except ValueError:
            out.rejections.append((n, "bad_number", ",".join(cells[1:4])))
            continue
        if not (0 < pf < 1e6 and 0 < sf < 1e6):
            out.rejections.append((n, "bad_factor", f"price_factor {pf}, split_factor {sf}"))
            continue
        if rows and day <= rows[-1][1]:
            out.rejections.append((n, "out_of_order", f"{day} after {rows[-1][1]}"))
            continue
        rows.append((n, day, pf, sf, ref))
    for (n, day, pf, sf, ref), (n2, _, pf2, sf2, _) in pairwise(rows):
        split = sf2 / sf
        div = pf / pf2
        if abs(split - 1) < _SAME and abs(div - 1) < _SAME:
            continue
        split = 1.0 if abs(split - 1) < _SAME else snap_ratio(split)
        div = 1.0 if abs(div - 1) < _SAME else div
        problem = factor_problem(split, div)
        if problem is not None:
            out.rejections.append((n2, "bad_factor", f"{problem} (from lines {n} and {n2})"))
            continue
        cash = round(ref * (1 - div), 6) if div != 1.0 else 0.0
        out.actions.append(Action(symbol, next_session(day), split, cash, div))
    return out


def read_map_file(path: Path, symbol: str) -> Parsed:
    """Renames of ``symbol`` from a LEAN map file (``yyyymmdd, ticker, exchange``)."""
    out = Parsed()
    last: date | None = None
    for n, cells in _lines(path):
        out.rows += 1
        if len(cells) < 2 or not cells[1]:
            out.rejections.append((n, "malformed_row", f"{len(cells)} fields, want 3"))
            continue
        try:
            day = parse_day(cells[0])
        except ValueError:
            out.rejections.append((n, "unparsable_date", f"date {cells[0]!r}"))
            continue
        if last is not None and day <= last:
            out.rejections.append((n, "out_of_order", f"{day} after {last}"))
            continue
        last = day
        out.entries.append(MapEntry(symbol, day, cells[1].upper()))
    return out
