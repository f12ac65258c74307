"""Settings precedence: defaults < TOML file < SESSIONFLOW_* env < explicit overrides."""

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

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
    with pytest.raises(ValidationError, match=field):
        Settings.load(cfg)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Settings.load(tmp_path / "absent.toml")
