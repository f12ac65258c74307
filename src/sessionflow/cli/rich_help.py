"""typer's help pages and error panels without the Markdown parser they do not use.

Why: ``typer.rich_utils`` imports ``rich.markdown`` (markdown-it) and ``rich.traceback``
(pygments) at its top: 60-90 ms here, about what importing typer itself takes, on
every ``sessionflow ... -h`` (issue 23, item 3). A help page of ours never renders
Markdown (its markup mode is "rich") and a traceback is printed only after a command
failed, by which time the command has imported far more. :func:`install` makes the
next import of ``typer.rich_utils`` (typer imports it when it first renders help or an
error) run with stand-ins for those two modules in ``sys.modules``; each stand-in class
builds the real object when first used, and the stand-ins are removed again right
after, so any other ``import rich.markdown`` gets the real module. The help text is
typer's own, unchanged (tests/test_cli_start.py compares it with the one rendered by a
plain import).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

RICH_UTILS = "typer.rich_utils"


class Markdown:
    """Stands for ``rich.markdown.Markdown``: builds the real one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.markdown import Markdown as Real

        return Real(*args, **kwargs)


class Traceback:
    """Stands for ``rich.traceback.Traceback``: ``from_exception`` builds the real one."""

    @classmethod
    def from_exception(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.traceback import Traceback as Real

        return Real.from_exception(*args, **kwargs)


STAND_INS: dict[str, type] = {"rich.markdown": Markdown, "rich.traceback": Traceback}


class Loader:
    """Runs the real loader of ``typer.rich_utils`` with the stand-ins in place."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.real.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        placed = []
        for name, cls in STAND_INS.items():
            if name not in sys.modules:
                stand_in = ModuleType(name, "stand-in until first use (cli/rich_help.py)")
                setattr(stand_in, cls.__name__, cls)
                sys.modules[name] = stand_in
                placed.append(name)
        try:
            self.real.exec_module(module)
        except ImportError:  # a typer wanting more of them than the stand-ins have
            self._remove(placed)
            placed = []
            self.real.exec_module(module)  # again, with the real modules
        finally:
            self._remove(placed)

    @staticmethod
    def _remove(placed: list[str]) -> None:
        for name in placed:
            del sys.modules[name]
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, Finder)]


class Finder:
    """A ``sys.meta_path`` entry for the import of ``typer.rich_utils``; removed by its
    loader once done (not here: the import system is iterating over ``sys.meta_path``)."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != RICH_UTILS:
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = Loader(spec.loader)  # type: ignore[assignment]
        return spec


def install() -> None:
    """Have typer import ``typer.rich_utils`` with the stand-ins, when it first does."""
    if RICH_UTILS in sys.modules or any(isinstance(f, Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, Finder())
