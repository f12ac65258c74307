"""``import factors`` and ``import actions``: corporate actions into the store, one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer

from sessionflow.cli.errors import store_error_line
from sessionflow.cli.import_cmd import new_store_file, remove_store_file
from sessionflow.cli.render import print_import
from sessionflow.importer.actions import ActionsFile, actions_csv, factor_files, write
from sessionflow.importer.bars import ImportError_
from sessionflow.store import CommandStore, StoreName, open_store
from sessionflow.store.errors import StoreError
from sessionflow.time_provider import ExchangeCalendar


def run(
    store_path: StoreName,
    read: Callable[[CommandStore], list[ActionsFile]],
    strict: bool,
    as_json: bool,
) -> None:
    """Read the files, write them in one go; exit 1 if nothing was written, 2 on a store error."""
    created = new_store_file(store_path)
    try:
        db = open_store(store_path)
    except StoreError as exc:
        typer.echo(store_error_line(exc), err=True)
        raise typer.Exit(2) from None
    error: str | None = "nothing was written"
    try:
        try:
            files = read(db)
        except ImportError_ as exc:
            _out_error(str(exc), as_json)
            raise typer.Exit(1) from None
        try:
            error = write(db, files, strict)
        except StoreError as exc:
            typer.echo(store_error_line(exc), err=True)
            raise typer.Exit(2) from None
    finally:
        db.close()
        if created is not None and error is not None:
            remove_store_file(created)  # "store unchanged": no empty store left behind
    if as_json:
        typer.echo(json.dumps([f.report.to_dict() for f in files], indent=2))
    else:
        for f in files:
            print_import(f.report)
    if error is not None:
        if not as_json:
            typer.echo(f"error: {error} (store unchanged)", err=True)
        raise typer.Exit(1)


def _out_error(message: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{"error": message, "committed": False}], indent=2))
    else:
        typer.echo(f"error: {message} (store unchanged)", err=True)


def factors(
    directory: Path, calendar: ExchangeCalendar
) -> Callable[[CommandStore], list[ActionsFile]]:
    return lambda _db: factor_files(directory, calendar)


def actions(file: Path, calendar: ExchangeCalendar) -> Callable[[CommandStore], list[ActionsFile]]:
    return lambda db: [actions_csv(file, db, calendar)]
