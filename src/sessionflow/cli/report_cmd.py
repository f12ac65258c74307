"""``sessionflow report``: per session and symbol, quality and the gaps in exchange-local time.

The engine's report keeps gaps as UTC instants; people read sessions in exchange
time, so ranges are shown as ``10:31-10:33 ET`` (end exclusive: minutes 10:31 and
10:32 had no bar). Filled minutes are collected from the replayed events because
the report only counts them. Table, CSV and JSON are built from the same rows.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from sessionflow.cli.progress import run_replay
from sessionflow.cli.sharded import ShardOptions
from sessionflow.cli.sharded import run as run_sharded
from sessionflow.data_upkeep import minute_ranges
from sessionflow.events import BarEvent, Event, SessionStartEvent
from sessionflow.models import from_us, to_us
from sessionflow.session_data import SessionReport
from sessionflow.system_manager import Settings, build_system
from sessionflow.time_provider import ExchangeCalendar

_TZ_LABELS = {"America/New_York": "ET"}


@dataclass(frozen=True)
class ReportRow:
    """One symbol in one session; ``gaps``/``filled`` are local ranges, end exclusive."""

    session: date
    symbol: str
    bars: int
    expected: int
    quality: float
    gaps_found: int
    gaps_filled: int
    gaps: list[str]
    filled: list[str]
    volume: int
    high: float | None
    low: float | None
    quotes: int
    extended_bars: int
    trailing_volume: int  # over the trailing days of history as the session began

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["session"] = self.session.isoformat()
        return out


Filled = dict[tuple[date, str], list[int]]


def run_report(settings: Settings) -> tuple[list[SessionReport], Filled, ZoneInfo]:
    """Backtest ``settings``; the session reports, filled minutes and the exchange time zone."""
    system = build_system(settings)
    filled: Filled = defaultdict(list)
    session: list[date] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, SessionStartEvent):
            session[:] = [ev.session]
        elif isinstance(ev, BarEvent) and ev.bar.filled:
            filled[(session[0], ev.bar.symbol)].append(to_us(ev.bar.ts))

    system.on_event(on_event)
    try:
        replay = run_replay(system, as_json=False)
    finally:
        system.store.close()
    tz = system.calendar.tz
    if replay.interrupted:  # print what completed, the cut session last, then exit 130
        partial = [replay.partial] if replay.partial is not None else []
        print_report(Console(width=150), report_rows([*replay.reports, *partial], filled, tz))
        replay.exit_if_interrupted()
    return replay.reports, dict(filled), tz


def run_sharded_report(
    settings: Settings, shards: ShardOptions
) -> tuple[list[SessionReport], Filled, ZoneInfo]:
    """:func:`run_report` over Dask shards: the same reports and fills, merged."""
    replay, merged = run_sharded(settings, shards, as_json=False)
    tz = ExchangeCalendar(settings.calendar).tz
    if replay.interrupted:  # the completed sessions, then exit 130
        print_report(Console(width=150), report_rows(replay.reports, merged.filled, tz))
        replay.exit_if_interrupted()
    return replay.reports, merged.filled, tz


def format_range(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """``10:31-10:33 ET``: exchange-local wall clock, end exclusive."""
    label = _TZ_LABELS.get(tz.key, tz.key)
    return f"{start.astimezone(tz):%H:%M}-{end.astimezone(tz):%H:%M} {label}"


def report_rows(reports: Sequence[SessionReport], filled: Filled, tz: ZoneInfo) -> list[ReportRow]:
    rows = []
    for rep in reports:
        for r in rep.rows:
            fills = minute_ranges(filled.get((rep.session, r.symbol), []))
            rows.append(
                ReportRow(
                    session=rep.session,
                    symbol=r.symbol,
                    bars=r.bars,
                    expected=r.expected,
                    quality=r.quality,
                    gaps_found=r.gaps_found,
                    gaps_filled=r.gaps_filled,
                    gaps=[
                        format_range(datetime.fromisoformat(a), datetime.fromisoformat(b), tz)
                        for a, b in r.gap_ranges
                    ],
                    filled=[format_range(from_us(a), from_us(b), tz) for a, b in fills],
                    volume=r.volume,
                    high=r.high,
                    low=r.low,
                    quotes=r.quotes,
                    extended_bars=r.extended_bars,
                    trailing_volume=r.trailing_volume,
                )
            )
    return rows


def report_table(rows: Sequence[ReportRow]) -> Table:
    title = "sessionflow report (gap ranges: exchange time, end exclusive)"
    table = Table(title=title, title_justify="left")
    for name in ("session", "symbol"):
        table.add_column(name, no_wrap=True)
    for name in ("bars", "exp", "qual%", "gaps", "filled", "volume", "high", "low", "quotes"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("gap ranges", overflow="fold")
    for r in rows:
        ranges = ", ".join(r.gaps) or "-"
        if r.filled:
            ranges += f" (filled: {', '.join(r.filled)})"
        table.add_row(
            r.session.isoformat(),
            r.symbol,
            str(r.bars),
            str(r.expected),
            f"{r.quality:.4f}",
            str(r.gaps_found),
            str(r.gaps_filled),
            f"{r.volume:,}",
            "-" if r.high is None else f"{r.high:.2f}",
            "-" if r.low is None else f"{r.low:.2f}",
            str(r.quotes),
            ranges,
        )
    return table


def print_report(console: Console, rows: Sequence[ReportRow]) -> None:
    console.print(report_table(rows))


def write_csv(path: Path, rows: Sequence[ReportRow]) -> None:
    """One line per session and symbol; range lists are joined with ``; ``."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ReportRow.__dataclass_fields__))
        writer.writeheader()
        for r in rows:
            d = r.to_dict()
            d["gaps"], d["filled"] = "; ".join(r.gaps), "; ".join(r.filled)
            writer.writerow(d)


def rows_json(rows: Sequence[ReportRow]) -> str:
    return json.dumps([r.to_dict() for r in rows], indent=2)
