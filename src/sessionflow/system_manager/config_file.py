"""Reading a TOML settings file, and settings errors that say where the bad value came from.

Why: pydantic's own report names internal classes, not the file; a typo in a key
should name the file and the key and suggest the closest valid one, a syntax
error should name the file and line, and a bad value should say whether it came
from the file, a ``SESSIONFLOW_*`` variable or an option.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

ENV_PREFIX = "SESSIONFLOW_"
_ENV_FIELD = re.compile(r'field "(?P<field>\w+)" from source "EnvSettingsSource"')
_TOML_WHERE = re.compile(r"^(?P<msg>.*) \(at (?P<where>line \d+, column \d+|end of document)\)$")


class ConfigError(ValueError):
    """A settings file or value that cannot be used; the message is one line."""


def read_config(path: Path) -> dict[str, Any]:
    """The TOML file as a dict; ConfigError names the file and line of a syntax error."""
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_WHERE.match(str(exc))
        where, msg = (m["where"], m["msg"]) if m else ("", str(exc))
        raise ConfigError(f"config {path}{', ' + where if where else ''}: {msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot be read ({exc})") from None


def check_keys(
    path: Path, data: Mapping[str, Any], model: type[BaseModel], prefix: str = ""
) -> None:
    """Refuse an unknown key, naming the file, the key and the closest valid key."""
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(
                f"config {path}: unknown key '{prefix}{key}'{hint}; "
                "every key is listed in sessionflow.example.toml"
            )
        sub = fields[key].annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            check_keys(path, value, sub, f"{prefix}{key}.")


def describe(
    exc: ValidationError, path: Path | None, data: Mapping[str, Any], given: Mapping[str, Any]
) -> str:
    """``source: key: reason (got value)`` for each error, joined with ``; ``."""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        key = ".".join(loc) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        got = f" (got {err['input']!r})" if loc and not isinstance(err["input"], dict) else ""
        if loc[:1] == ["store_path"]:  # a store URL may hold a password: never echo it
            got = ""
        parts.append(f"{_source(loc, path, data, given)}{key}: {msg}{got}")
    return "; ".join(parts)


def _source(
    loc: list[str], path: Path | None, data: Mapping[str, Any], given: Mapping[str, Any]
) -> str:
    if not loc or loc[0] in given:
        return "settings: "
    env = ENV_PREFIX + "__".join(loc[:2]).upper()
    env_top = ENV_PREFIX + loc[0].upper()
    for name in (env, env_top):
        if any(k.upper() == name for k in os.environ):
            return f"{name}: "
    if path is not None and loc[0] in data:
        return f"config {path}: "
    return "settings: "


def env_error(exc: Exception) -> str:
    """pydantic-settings' message for an unparsable variable, naming the variable."""
    m = _ENV_FIELD.search(str(exc))
    if m is None:
        return f"settings: {exc}"
    name = ENV_PREFIX + m["field"].upper()
    return f"{name}: not valid JSON; use {name}__<KEY> variables for its keys"
