"""``sessionflow export bars``: bars out of the store, as the engine computes them.

The store is opened read-only. Every option is checked before the output file is
touched, and the file appears only once complete (``export.write_bars``).
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from sessionflow.cli.options import calendar_option, one_line, parse_symbols, plural
from sessionflow.corporate_actions.adjust import AdjustmentError, check_mode
from sessionflow.export import export_chunks, parse_interval, write_bars
from sessionflow.export.bars import FORMATS, bound_cache
from sessionflow.export.output import OutputExists
from sessionflow.store import open_store
from sessionflow.system_manager import Settings

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
export_app = typer.Typer(no_args_is_help=True, help="Export data from the store.")


def _date(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{option} {text!r} is not a YYYY-MM-DD date ({exc})") from None


def _output(text: str, force: bool) -> Path:
    """``--output``: a file name in an existing folder; an existing file only with --force."""
    if not text.strip():
        raise ValueError("--output '': give a file name, such as bars.csv")
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.name in ("", ".", "..") or path.is_dir():
        raise ValueError(f"--output {text!r} is a directory; give a file name, such as bars.csv")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist")
    if path.exists() and not force:
        raise OutputExists(path)
    return path


def _format(fmt: str | None, output: Path) -> str:
    """``--format``, else the suffix; a suffix naming another format is refused, not ignored."""
    by_suffix = SUFFIXES.get(output.suffix.lower())
    if fmt is None:
        if by_suffix is None:
            raise ValueError(
                f"--output {output}: cannot tell the format from the suffix "
                f"{output.suffix or '(none)'!r}; name it .csv or .parquet, or add --format"
            )
        return by_suffix
    chosen = fmt.strip().lower()
    if chosen not in FORMATS:
        raise ValueError(f"--format {fmt!r}: use csv or parquet")
    if by_suffix is not None and by_suffix != chosen:
        raise ValueError(f"--format {chosen} with --output {output}: the suffix says {by_suffix}")
    return chosen


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
    output: Annotated[str, typer.Option("--output", "-o", help="file to write")],
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated symbols (default: all stored)")
    ] = None,
    interval: Annotated[str, typer.Option(help="1m, 5m, 15m, any Nm, or Nh such as 1h")] = "1m",
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or parquet (default: by suffix, .csv or .parquet)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace the output file if it exists")
    ] = False,
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
        path = _output(output, force)
        kind = _format(fmt, path)
        first, last = _date("--start", start), _date("--end", end)
        cal = calendar_option(calendar)
        sessions = cal.sessions(first, last)
        if not sessions:
            raise ValueError(f"no {cal.name} sessions between {first} and {last}")
        wanted = parse_symbols(symbols)
        mode, as_of_day = _adjustment(adjustment, as_of, last)
    except (ValueError, OutputExists) as exc:
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
            with bound_cache(db, len(names)):
                chunks = export_chunks(db, names, sessions, minutes, as_of_day, mode)
                counts = write_bars(chunks, path, kind, replace=force)
        except OutputExists as exc:  # written meanwhile by another command
            typer.echo(f"error: {exc} (it appeared while this export ran)", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            typer.echo(f"error: cannot write {path}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        except AdjustmentError as exc:  # raised before the file is in place: none written
            typer.echo(f"error: {one_line(exc)}", err=True)
            raise typer.Exit(2) from None
    finally:
        db.close()
    per_symbol = {s: counts.get(s, 0) for s in names}
    if as_json:
        summary = {
            "output": str(path),
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
        f"wrote {sum(per_symbol.values()):,} {minutes}m bars of {plural(len(names), 'symbol')} "
        f"over {plural(len(sessions), 'session')} to {path}"
    )
    empty = [s for s in names if not counts.get(s)]
    if empty:
        typer.echo(f"note: no bars stored for {', '.join(empty)} in {first}..{last}", err=True)
