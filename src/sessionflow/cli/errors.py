"""One line and exit 2 for a store that cannot be used, from every command.

The group wraps every sub-command (``import bars`` and ``import lean`` too), so a
``StoreError`` raised anywhere while a command runs (locked, damaged, too new,
read-only, full, missing) reaches the user as ``error: <message>`` on stderr,
never as a traceback. ``typer.echo`` rather than rich: rich wraps long lines.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from sessionflow.store.errors import StoreError


def store_error_line(exc: StoreError) -> str:
    return f"error: {exc}"


class StoreErrorGroup(TyperGroup):
    """A command group that turns a ``StoreError`` into one line and exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            typer.echo(store_error_line(exc), err=True)
            raise typer.Exit(2) from None
