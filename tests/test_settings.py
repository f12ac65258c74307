"""Settings precedence: defaults < TOML file < SESSIONFLOW_* env < explicit overrides."""

import json
from datetime import date
from pathlib import Path

import pytest

from sessionflow import Settings


def test_toml_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "sessionflow.toml"
    cfg.write_text(
        'symbols = ["aapl", "msft"]\nstart = 2024-11-25\nend = 2024-11-29\n'
        "speed = 60\ntrailing_days = 3\nderived_intervals = [15, 5, 30]\n"
    )
    s = Settings.load(cfg)
    assert s.symbols == ["AAPL", "MSFT"]
    assert (s.start, s.end, s.speed, s.trailing_days) == (
        date(2024, 11, 25),
        date(2024, 11, 29),
        60,
        3,
    )
    assert s.derived_intervals == [5, 15, 30]
    monkeypatch.setenv("SESSIONFLOW_SPEED", "1")
    assert Settings.load(cfg).speed == 1
    assert Settings.load(cfg, speed=0.0, symbols=None).speed == 0.0


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("speed = -1\n", "speed"),
        ("derived_intervals = [0]\n", "derived_intervals"),
        ("nope = 1\n", "nope"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ValueError, match=field):
        Settings.load(cfg)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Settings.load(tmp_path / "absent.toml")


def test_symbols_are_normalised_wherever_settings_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.load(symbols=[" aapl ", "Msft"]).symbols == ["AAPL", "MSFT"]
    cfg = tmp_path / "s.toml"
    cfg.write_text('symbols = ["spy ", "qqq"]\n')
    assert Settings.load(cfg).symbols == ["SPY", "QQQ"]
    monkeypatch.setenv("SESSIONFLOW_SYMBOLS", '[" nvda"]')
    assert Settings.load().symbols == ["NVDA"]


@pytest.mark.parametrize(
    ("symbols", "reason"),
    [
        (["AAPL", ""], "symbol '' is empty"),
        (["AAPL", "  "], "symbol '  ' is empty"),
        (["BRK B"], "symbol 'BRK B' contains whitespace"),
        (["A,B"], "symbol 'A,B' contains a comma"),
        (["A\x01"], "symbol 'A\\\\x01' contains a control character"),
        (["aapl", "AAPL "], "duplicate symbol 'AAPL"),
    ],
)
def test_bad_symbols_are_refused_with_the_symbol_and_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, symbols: list[str], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Settings.load(symbols=symbols)
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        "symbols = [" + ", ".join(f'"{s}"' for s in symbols).replace("\x01", "\\u0001") + "]\n"
    )
    with pytest.raises(ValueError, match=reason):
        Settings.load(cfg)
    monkeypatch.setenv("SESSIONFLOW_SYMBOLS", json.dumps(symbols))
    with pytest.raises(ValueError, match=reason):
        Settings.load()
