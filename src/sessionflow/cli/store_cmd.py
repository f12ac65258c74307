"""``sessionflow store info`` (an inventory, opened read-only) and ``store copy``.

Read-only so it runs beside a backtest or another reader, never creates a file,
and never migrates an older store (docs/reliability.md, readers and writers).
``store copy`` moves a store between DuckDB and PostgreSQL (docs/store-and-export.md).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sessionflow.cli.options import calendar_option, plural
from sessionflow.cli.shutdown import EXIT_INTERRUPTED
from sessionflow.store import open_store
from sessionflow.store.base import StoreWriteError
from sessionflow.store.copy import CopyResult, copy_store, same_file
from sessionflow.store.errors import is_interrupt
from sessionflow.store.info import StoreInfo, store_info
from sessionflow.system_manager import Settings

store_app = typer.Typer(no_args_is_help=True, help="Look inside the store, copy it.")
_LISTED = 10  # missing sessions named in the text output; --json has them all


@store_app.command("info")
def info(
    store: Annotated[
        str | None,
        typer.Option("--store", help="DuckDB store file or postgresql://user@host:port/db"),
    ] = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    as_json: Annotated[
        bool, typer.Option("--json", help="print the result as JSON to stdout")
    ] = False,
) -> None:
    """Symbols, sessions covered, rows of bars/quotes/ticks and bar quality per symbol."""
    try:
        cal = calendar_option(calendar)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    db = open_store(store or Settings.load().store_path, read_only=True)
    try:
        got = store_info(db, cal)
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps(got.to_dict(), indent=2))
    else:
        print_info(Console(width=max(Console().width, 110)), got)


def print_info(console: Console, got: StoreInfo) -> None:
    user = ", holds user data" if got.user_data else ""
    console.print(f"[bold]{got.path}[/] schema {got.schema_version}, "
                  f"created by {got.created_by}{user}", soft_wrap=True)  # fmt: skip
    rows = got.rows
    console.print(
        f"rows: {rows['bars']:,} bars, {rows['quotes']:,} quotes, {rows['ticks']:,} ticks"
    )
    if got.first_session is None:
        console.print("no bars stored")
        return
    console.print(
        f"{plural(len(got.symbols), 'symbol')}; sessions {got.first_session} .. {got.last_session} "
        f"({got.calendar}): {got.sessions_covered} of {got.calendar_sessions} have bars"
    )
    if got.missing_sessions:
        shown = ", ".join(d.isoformat() for d in got.missing_sessions[:_LISTED])
        more = len(got.missing_sessions) - _LISTED
        tail = f" and {more} more" if more > 0 else ""
        console.print(f"sessions without any bar: {shown}{tail}")
    table = Table("symbol", "first", "last", "sessions", "bars", "expected", "quality %",
                  "extended")  # fmt: skip
    for s in got.per_symbol:
        table.add_row(s.symbol, str(s.first_session), str(s.last_session),
                      f"{s.sessions}/{s.calendar_sessions}", f"{s.bars:,}", f"{s.expected:,}",
                      f"{s.quality:.2f}", f"{s.extended_bars:,}")  # fmt: skip
    console.print(table)


@store_app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="store to read: DuckDB file or postgresql:// URL")],
    destination: Annotated[
        str, typer.Argument(help="store to write: DuckDB file or postgresql:// URL")
    ],
    on_conflict: Annotated[
        str | None,
        typer.Option(
            "--on-conflict",
            help="the destination holds rows: replace (the source's win) or keep (its own "
            "stay); without it a non-empty destination is refused",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the result as JSON to stdout")
    ] = False,
) -> None:
    """Copy bars, quotes, ticks, corporate actions and renames in ONE destination transaction.

    Prints rows and a checksum per table for both sides; exit 2 if they differ.
    """
    if same_file(source, destination):
        typer.echo(f"error: source and destination are the same store ({source})", err=True)
        raise typer.Exit(2)
    phase = ["copying"]

    def say(text: str) -> None:
        phase[0] = text.split()[0]
        if not as_json:
            typer.echo(text, err=True)

    src = open_store(source, read_only=True)
    try:
        dst = open_store(destination)
        try:
            result = copy_store(src, dst, on_conflict, progress=say)
        except (ValueError, StoreWriteError) as exc:
            typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
            raise typer.Exit(2) from None
        except (KeyboardInterrupt, Exception) as exc:  # rolled back, or had committed
            if not is_interrupt(exc):
                raise
            checking = phase[0] == "checking"
            state = (
                "the copy was written, its check did not end" if checking else "nothing was copied"
            )
            typer.echo(f"interrupted: {state} (a copy is one destination transaction)", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            dst.close()
    finally:
        src.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_copy(Console(width=max(Console().width, 110)), result)
    if not result.equal and on_conflict != "keep":
        typer.echo("error: the destination does not match the source (checksums differ)", err=True)
        raise typer.Exit(2)


def print_copy(console: Console, got: CopyResult) -> None:
    console.print(f"copied {got.source} -> {got.destination}", soft_wrap=True)
    table = Table("table", "rows", "source checksum", "destination rows",
                  "destination checksum", "equal")  # fmt: skip
    for t in got.tables:
        table.add_row(t.table, f"{t.rows:,}", t.source_checksum[:16], f"{t.destination_rows:,}",
                      t.destination_checksum[:16], "yes" if t.equal else "NO")  # fmt: skip
    console.print(table)
