"""Commands registered by name and first help line, built and imported only when they run.

Why: a command's module imports what the command needs (DuckDB, pandas, the
calendar, Dask, uvicorn), and typer reads every registered function's signature
when the command line starts; registering them all would pay both on every start,
``sessionflow --version`` and ``sessionflow -h`` included. The group lists a
:class:`Lazy` as a placeholder carrying the help line and swaps in the real command
when the command line names it (``sessionflow live ...``, ``sessionflow live -h``).
tests/test_cli_start.py checks each placeholder's help line against its command and
that a start imports none of the heavy libraries.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import typer
import typer.main
from typer._click import Command
from typer.core import TyperCommand, TyperGroup

from sessionflow.cli.errors import StoreErrorGroup, prepare_in


@dataclass(frozen=True)
class Lazy:
    """``name`` runs ``target``: a command function or a Typer app, or ``module:attribute``
    naming one (the module is imported when the command runs). ``help`` is the first
    paragraph of its help, shown in ``sessionflow -h``."""

    name: str
    target: str | Callable[..., Any] | typer.Typer
    help: str

    @classmethod
    def of(cls, function: Callable[..., Any]) -> Lazy:
        """A command function at hand: its name (``_`` as ``-``) and its docstring's help."""
        doc = inspect.cleandoc(function.__doc__ or "")
        return cls(function.__name__.replace("_", "-"), function, doc.split("\n\n")[0])

    def load(self) -> Command:
        """The real command, built as registering it on the app would have built it."""
        obj = self.target
        if isinstance(obj, str):
            module, attribute = obj.split(":")
            obj = getattr(import_module(module), attribute)
        holder = typer.Typer(add_completion=False)
        holder.callback()(_nothing)  # a Typer with a callback is always a group
        if isinstance(obj, typer.Typer):
            holder.add_typer(obj, name=self.name)
        else:
            holder.command(self.name)(obj)
        group = typer.main.get_command(holder)
        assert isinstance(group, TyperGroup)
        return group.commands[self.name]


def _nothing() -> None:
    """The holder group's callback."""


class Placeholder(TyperCommand):
    """Stands for a :class:`Lazy` in the group's listing; never invoked."""

    def __init__(self, spec: Lazy) -> None:
        super().__init__(spec.name, help=spec.help, short_help=spec.help)
        self.spec = spec


class LazyGroup(StoreErrorGroup):
    """A :class:`StoreErrorGroup` whose :meth:`specs` commands load when resolved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for spec in self.specs():
            self.commands[spec.name] = Placeholder(spec)

    def specs(self) -> tuple[Lazy, ...]:
        """The lazily built commands, in the order ``-h`` lists them."""
        return ()

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, Placeholder) and name is not None:
            command = command.spec.load()
            prepare_in(command, ctx)
            self.commands[name] = command
        return name, command, rest
