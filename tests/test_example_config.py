"""``sessionflow.example.toml`` documents every setting with its default: kept in sync here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from sessionflow import Settings
from sessionflow.system_manager.live_settings import LiveSettings
from sessionflow.system_manager.trading_settings import TradingSettings

EXAMPLE = Path(__file__).parents[1] / "sessionflow.example.toml"
# A setting without a default value in TOML (None) is shown commented out: "# key = example".
COMMENTED = re.compile(r"^#\s?(?P<key>[a-z_]+) = ")
KEY = re.compile(r"^(?P<key>[a-z_]+) = ")


def _sections(text: str) -> dict[str, dict[str, tuple[bool, bool]]]:
    """Per table, per key: (active, preceded by a comment line saying what it means)."""
    out: dict[str, dict[str, tuple[bool, bool]]] = {"": {}}
    table, prev = "", ""
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line.strip()):
            table = m[1]
            out[table] = {}
        elif m := KEY.match(line):
            out[table][m["key"]] = (True, prev.startswith("#"))
        elif m := COMMENTED.match(line):
            out[table][m["key"]] = (False, prev.startswith("#"))
        prev = line
    return out


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {
        name: f.get_default(call_default_factory=True) for name, f in model.model_fields.items()
    }


@pytest.mark.parametrize(
    ("table", "model"), [("", Settings), ("live", LiveSettings), ("trading", TradingSettings)]
)
def test_every_setting_is_documented_with_its_default(table: str, model: type[BaseModel]) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = _sections(text)[table]
    loaded = tomllib.loads(text)
    values = loaded.get(table, {}) if table else loaded
    for name, default in _defaults(model).items():
        if isinstance(default, BaseModel):
            continue  # the nested [live] and [trading] tables, checked on their own
        assert name in documented, f"{name} is missing from {EXAMPLE.name} [{table}]"
        active, explained = documented[name]
        assert explained, f"{name}: add a comment line above it saying what it means"
        if default is None:
            assert not active, f"{name} defaults to unset: show it commented out"
        else:
            assert active, f"{name}: show its default, uncommented"
            assert model.model_validate({name: values[name]}).__dict__[name] == default, name
    extra = set(documented) - set(model.model_fields)
    assert not extra, f"{EXAMPLE.name} documents settings that do not exist: {extra}"


def test_loading_the_example_gives_the_defaults() -> None:
    assert Settings.load(EXAMPLE) == Settings()
