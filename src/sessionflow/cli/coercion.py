"""A parameter's value goes through typer's pydantic coercion only when there is one.

Why: typer builds a pydantic ``TypeAdapter`` for a parameter the first time it processes
it, even when the value is None and the adapter is never called (an option not given:
the ``-h`` of each group above the named command, the missing argument of
``sessionflow import bars``). Importing pydantic for that cost more than typer and rich
together on ``sessionflow import bars -h`` and on argument errors (issue 23, item 3).
:class:`Deferred` stands in for typer's coercion: None is answered by typer's own
``RuntimeParam.coerce`` as before, and the first real value builds typer's coercion,
which then replaces it. tests/test_cli_start.py checks that help and argument errors do
not import pydantic; the values a command receives are typer's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typer._click import Context
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import _TyperParameter


@dataclass(frozen=True)
class Deferred(RuntimeParam):
    """typer's coercion for ``descriptor``, built on the first value that is not None."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        real = build_runtime_param(self.descriptor)
        param._runtime_param = real
        return real._coerce_value(value, param=param, ctx=ctx)


def defer_coercion(param: Any) -> None:
    """Put a :class:`Deferred` in place of a typer parameter's not yet built coercion."""
    if isinstance(param, _TyperParameter) and param._runtime_param is None:
        kind = param.type_descriptor
        param._runtime_param = Deferred(kind.parameter_info, kind.annotation, kind)
