"""Running an import command: one transaction, a report per file, JSON that is never lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from sessionflow.cli.errors import store_error_line
from sessionflow.cli.options import one_line
from sessionflow.cli.progress import import_progress
from sessionflow.cli.render import print_import
from sessionflow.cli.shutdown import EXIT_INTERRUPTED
from sessionflow.importer import Job, run_import
from sessionflow.importer.validate import epoch_unit
from sessionflow.store import StoreName, open_store
from sessionflow.store.open import is_url
from sessionflow.time_provider import ExchangeCalendar


def zone(tz: str | None, calendar: ExchangeCalendar) -> ZoneInfo | None:
    """``--tz``: None, ``exchange`` (the calendar's zone) or an IANA zone name."""
    if tz is None:
        return None
    if tz.strip().lower() == "exchange":
        return calendar.tz
    try:
        return ZoneInfo(tz.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"--tz {tz!r} is not a time zone; use 'exchange' or an IANA name such as UTC"
        ) from None


def epoch(unit: str | None, tz: str | None) -> str | None:
    """``--epoch``: integer times count from 1970-01-01 UTC, so a zone would be ambiguous."""
    if unit is not None and tz is not None:
        raise ValueError(
            "--epoch and --tz together: epoch times count from 1970-01-01 UTC and need no zone; "
            "drop --tz (or --epoch if the times are text)"
        )
    return epoch_unit(unit)


def abort(message: str, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps([{"error": message, "committed": False}], indent=2))
    else:
        typer.echo(f"aborted: {message} (store unchanged)", err=True)
    raise typer.Exit(1)


def new_store_file(name: StoreName) -> Path | None:
    """The DuckDB file this import is about to create, or None (it exists, or a URL)."""
    text = str(name)
    if is_url(text) or text == ":memory:" or Path(text).exists():
        return None
    return Path(text)


def remove_store_file(path: Path) -> None:
    for leftover in (path, path.with_name(f"{path.name}.wal")):
        leftover.unlink(missing_ok=True)


def run(
    store_path: StoreName, jobs: list[Job], on_conflict: str, as_json: bool, strict: bool = False
) -> None:
    """Import ``jobs`` into the store; exit 1 (nothing written) if any file or the write failed.

    A file with no importable row counts as failed; ``strict``: so does any rejection.
    """
    created = new_store_file(store_path)
    db = open_store(store_path)
    result = None
    try:
        with import_progress(len(jobs), as_json) as on_progress:
            result = run_import(db, jobs, on_conflict, strict, on_progress)
    except KeyboardInterrupt:  # the write is one transaction: it rolled back, or it is done
        done = bool(jobs) and all(j.report.committed for j in jobs)
        state = "the import was already written" if done else "nothing was written"
        typer.echo(f"interrupted: {state} (an import is one transaction)", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        db.close()
        if created is not None and not (result is not None and result.committed):
            remove_store_file(created)  # "store unchanged": no empty store left behind
    if as_json:
        out = []
        for report in result.reports:
            d = report.to_dict()
            if result.error and "error" not in d:
                d["error"] = result.error
            out.append(d)
        typer.echo(json.dumps(out, indent=2))
    else:
        for report in result.reports:
            if report.error:  # a reason, not a result: stderr, one line however long
                typer.echo(f"aborted: {one_line(report.error)}", err=True)
            else:
                print_import(report)
        if result.error and result.store_error is None:  # one line on stderr, for scripts
            typer.echo(f"error: {result.error} (store unchanged)", err=True)
    if result.store_error is not None:  # the store failed: one line and exit 2, as everywhere
        typer.echo(store_error_line(result.store_error), err=True)
        raise typer.Exit(2)
    if not result.committed:
        raise typer.Exit(1)
