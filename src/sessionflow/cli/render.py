"""Rich tables for session and import reports."""

from __future__ import annotations

from collections.abc import Sequence

import typer
from rich.table import Table

from sessionflow.cli.options import plural
from sessionflow.importer import ImportReport
from sessionflow.session_data import SessionReport
from sessionflow.session_data.quality import quality_percent


def session_tables(reports: Sequence[SessionReport], intervals: Sequence[int]) -> list[Table]:
    """One compact table per session: what arrived, what was expected, what was missing."""
    tables = []
    for rep in reports:
        title = f"{rep.session}" + (" (early close)" if rep.early_close else "")
        table = Table(title=title, title_justify="left")
        table.add_column("symbol", no_wrap=True)
        for name in ("bars", "exp", "qual%", "gaps", "fill", *(f"{k}m" for k in intervals)):
            table.add_column(name, justify="right", no_wrap=True)
        for name in ("volume", "high", "low"):
            table.add_column(name, justify="right", no_wrap=True)
        for row in rep.rows:
            table.add_row(
                row.symbol,
                str(row.bars),
                str(row.expected),
                f"{quality_percent(row.bars, row.expected, 2):.2f}",  # rounded once
                str(row.gaps_found),
                str(row.gaps_filled),
                *(str(row.derived.get(k, 0)) for k in intervals),
                f"{row.volume:,}",
                "-" if row.high is None else f"{row.high:.2f}",
                "-" if row.low is None else f"{row.low:.2f}",
            )
        tables.append(table)
    return tables


def print_import(report: ImportReport, limit: int = 20) -> None:
    """The per-file report on stdout, one unwrapped line each (a path is never cut by a width)."""
    state = "" if report.committed else " (not written)"
    lines = [
        f"{report.file}{state}: {plural(report.rows, 'row')}: {report.new} new, "
        f"{report.unchanged} unchanged, {report.replaced} replaced"
        + (f", {report.kept} kept (differing, not written)" if report.kept else "")
        + f", {sum(report.rejected.values())} rejected"
        + (f" ({report.extended} extended-hours rows accepted)" if report.extended else "")
    ]
    lines += [f"  {reason}: {n}" for reason, n in sorted(report.rejected.items())]
    lines += [
        f"  line {line}: {reason} {detail}" for line, reason, detail in report.rejections[:limit]
    ]
    more = sum(report.rejected.values()) - min(limit, len(report.rejections))
    if more > 0:
        lines.append(f"  ... {more} more (use --json to list up to 10,000)")
    for text in lines:
        typer.echo(text)
