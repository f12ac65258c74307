"""``sessionflow export bars``: bars out of the store, as the engine computes them.

The store is opened read-only. Every option is checked before the output file is
touched, and the file appears only once complete (``export.write_bars``).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from sessionflow.cli.options import calendar_option, one_line, parse_symbols
from sessionflow.corporate_actions.adjust import AdjustmentError, check_mode
from sessionflow.export import export_chunks, parse_interval, write_bars
from sessionflow.export.bars import FORMATS
from sessionflow.store import open_store
from sessionflow.system_manager import Settings

export_app = typer.Typer(no_args_is_help=True, help="Export data from the store.")


def _date(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{option} {text!r} is not a YYYY-MM-DD date ({exc})") from None


def _format(fmt: str | None, output: Path) -> str:
    if fmt is None:
        return "parquet" if output.suffix.lower() == ".parquet" else "csv"
    if fmt.strip().lower() not in FORMATS:
        raise ValueError(f"--format {fmt!r}: use csv or parquet")
    return fmt.strip().lower()


def _adjustment(mode: str | None, as_of: str | None, end: date) -> tuple[str, date | None]:
    """No option: raw, as stored. ``--adjustment`` alone is as of ``--end``."""
    if mode is None and as_of is None:
        return "raw", None
    chosen = check_mode((mode or "split").strip().lower())
    day = _date("--as-of", as_of) if as_of is not None else end
    return chosen, None if chosen == "raw" else day


@export_app.command("bars")
def bars(
    start: Annotated[str, typer.Option(help="first session, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last session, YYYY-MM-DD")],
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated symbols (default: all stored)")
    ] = None,
    interval: Annotated[str, typer.Option(help="1m, 5m, 15m or any Nm")] = "1m",
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or parquet (default: by file suffix)")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="DuckDB store file or postgresql://user@host:port/db"),
    ] = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="adjust earlier sessions for corporate actions up to this session"
        ),
    ] = None,
    adjustment: Annotated[
        str | None,
        typer.Option(help="raw, split or split_dividend (default: split with --as-of, else raw)"),
    ] = None,
) -> None:
    """Write regular-session bars, derived k-minute bars aligned to the session open.

    Columns: symbol, timestamp (bar open, UTC), open, high, low, close, volume,
    minutes (a session's last window is short when k does not divide it).
    """
    try:
        minutes = parse_interval(interval)
        kind = _format(fmt, output)
        first, last = _date("--start", start), _date("--end", end)
        cal = calendar_option(calendar)
        sessions = cal.sessions(first, last)
        if not sessions:
            raise ValueError(f"no {cal.name} sessions between {first} and {last}")
        wanted = parse_symbols(symbols)
        mode, as_of_day = _adjustment(adjustment, as_of, last)
    except ValueError as exc:
        typer.echo(f"error: {one_line(exc)}", err=True)
        raise typer.Exit(2) from None
    db = open_store(store or Settings.load().store_path, read_only=True)
    try:
        stored = db.symbols()
        names = wanted if wanted is not None else stored
        unknown = [s for s in names if s not in set(stored)]
        if unknown or not names:
            why = f"symbols not in the store: {', '.join(unknown)}" if unknown else "store is empty"
            typer.echo(f"error: {why} ({db.path})", err=True)
            raise typer.Exit(2)
        try:
            chunks = export_chunks(db, names, sessions, minutes, as_of_day, mode)
            counts = write_bars(chunks, output, kind)
        except OSError as exc:
            typer.echo(f"error: cannot write {output}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        except AdjustmentError as exc:  # raised before the file is in place: none written
            typer.echo(f"error: {one_line(exc)}", err=True)
            raise typer.Exit(2) from None
    finally:
        db.close()
    per_symbol = {s: counts.get(s, 0) for s in names}
    if as_json:
        summary = {
            "output": str(output),
            "format": kind,
            "interval_minutes": minutes,
            "sessions": len(sessions),
            "bars": per_symbol,
            "adjustment": mode,
            "as_of": as_of_day.isoformat() if as_of_day else None,
        }
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"wrote {sum(per_symbol.values()):,} {minutes}m bars of {len(names)} symbols over "
        f"{len(sessions)} sessions to {output}"
    )
    empty = [s for s in names if not counts.get(s)]
    if empty:
        typer.echo(f"note: no bars stored for {', '.join(empty)} in {first}..{last}", err=True)
