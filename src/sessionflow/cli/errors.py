"""One line and exit 2 for a store that cannot be used or a mistyped command line.

The group wraps every sub-command (``import bars`` and ``import lean`` too), so a
``StoreError`` raised anywhere while a command runs (locked, damaged, too new,
read-only, full, missing) reaches the user as ``error: <message>`` on stderr,
never as a traceback. A usage error (unknown option, bad value for an option)
is one line too, not click's framed box. ``typer.echo`` rather than rich: rich
wraps long lines. Flags show no ``<bool>`` type in help: they take no value. Every
parameter of the group's commands gets its coercion deferred (cli/coercion.py).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from sessionflow.cli.coercion import defer_coercion

if TYPE_CHECKING:
    from sessionflow.store.errors import StoreError

EXIT_USAGE = 2
HELP_OPTIONS = ["-h", "--help"]
# (module, class): a setting or store error; looked up in sys.modules, not imported, so a
# command that never loaded the store (``--help``, ``--version``) does not load it to
# check, and an error of a module that was never loaded cannot have been raised
_ONE_LINE_ERRORS = (
    ("sessionflow.store.errors", "StoreError"),
    ("sessionflow.system_manager.config_file", "ConfigError"),  # a setting the command read
)


def store_error_line(exc: StoreError) -> str:
    return f"error: {exc}"


def usage_error_line(exc: UsageError) -> str:
    msg = " ".join(exc.format_message().split())
    path = exc.ctx.command_path if exc.ctx is not None else "sessionflow"
    return f"error: {msg} (see '{path} -h')"


def _prepare(params: list[Any]) -> list[Any]:
    """Flags without a ``<bool>`` type; coercion deferred to a real value (cli/coercion.py)."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
        defer_coercion(p)
    return params


class StoreErrorGroup(TyperGroup):
    """A command group: a ``StoreError`` or a usage error is one line and exit code 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """A group's own mistakes are one line too: the top group's (``sessionflow --x``)
        are parsed outside any parent's :meth:`invoke` and were typer's framed panel."""
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            typer.echo(usage_error_line(exc), err=True)
            raise typer.Exit(EXIT_USAGE) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError as exc:  # ``sessionflow import``: typer printed the help
            if exc.format_message():  # (into the message without rich)
                typer.echo(exc.format_message(), err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except UsageError as exc:
            typer.echo(usage_error_line(exc), err=True)
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:
            if not _one_line_error(exc):
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from None

    def get_params(self, ctx: Any) -> list[Any]:
        return _prepare(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            prepare_in(cmd, ctx)
        return cmd


def _one_line_error(exc: Exception) -> bool:
    for module, name in _ONE_LINE_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def prepare_in(cmd: Any, ctx: Any) -> None:
    """Sub-groups (``import``, ...) too, whatever class they were built with."""
    _prepare(cmd.get_params(ctx))
    for sub in getattr(cmd, "commands", {}).values():
        prepare_in(sub, ctx)
