"""Loading ``FILE.py:Class`` and parsing ``--param k=v`` by the type of each default.

Every failure is a ``StrategyLoadError`` whose message is one line naming the file,
class or parameter and the reason (the CLI prints it as ``error: ...``, exit 2).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from sessionflow.strategy.base import Strategy

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_ARTICLE = {int: "an"}


class StrategyLoadError(ValueError):
    """A strategy that cannot be loaded or a parameter that does not parse."""


def load_strategy(spec: str) -> type[Strategy]:
    """The Strategy subclass named by ``path/to/file.py:ClassName``."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise StrategyLoadError(f"--strategy {spec!r}: use FILE.py:Class")
    path = Path(path_text)
    if not path.is_file():
        raise StrategyLoadError(f"--strategy {spec!r}: no file {path}")
    module_name = f"sessionflow_strategy_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise StrategyLoadError(f"--strategy {spec!r}: {path} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise StrategyLoadError(
            f"--strategy {spec!r}: {path}{_line(exc, path)} does not load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, name, None)
    if cls is None:
        raise StrategyLoadError(f"--strategy {spec!r}: {path} has no {name}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(
            f"--strategy {spec!r}: {name} is not a sessionflow.Strategy subclass"
        )
    return cls


def _line(exc: BaseException, path: Path) -> str:
    """``:LINE`` of the deepest frame in the strategy file (or of a syntax error)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f":{exc.lineno}"
    tb, line = exc.__traceback__, None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path.resolve():
            line = tb.tb_lineno
        tb = tb.tb_next
    return "" if line is None else f":{line}"


def parse_params(cls: type[Strategy], given: list[str]) -> dict[str, Any]:
    """``["fast=5", ...]`` as a dict, each value converted to its default's type."""
    out: dict[str, Any] = {}
    for item in given:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StrategyLoadError(f"--param {item!r}: use NAME=VALUE")
        if key not in cls.params:
            known = ", ".join(sorted(cls.params)) or "none"
            raise StrategyLoadError(
                f"--param {item!r}: {cls.__name__} has no parameter {key!r} (it has: {known})"
            )
        out[key] = convert(key, text.strip(), cls.params[key])
    return out


def convert(key: str, text: str, default: Any) -> Any:
    """``text`` as the type of ``default`` (bool, int, float, str; None takes text)."""
    kind = type(default)
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ValueError("not a boolean")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if default is None or kind is str:
            return text
    except ValueError:
        raise StrategyLoadError(
            f"--param {key}={text!r}: not {_ARTICLE.get(kind, 'a')} {kind.__name__} "
            f"(the default is {default!r})"
        ) from None
    raise StrategyLoadError(
        f"--param {key}: its default {default!r} is a {kind.__name__}; only bool, int, "
        "float and str parameters can be given on the command line"
    )


def merged_params(cls: type[Strategy], given: dict[str, Any] | None) -> dict[str, Any]:
    """The class defaults updated by ``given``; an unknown name is refused."""
    unknown = sorted(set(given or {}) - set(cls.params))
    if unknown:
        raise StrategyLoadError(
            f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))} "
            f"(it has: {', '.join(sorted(cls.params)) or 'none'})"
        )
    return {**cls.params, **(given or {})}
