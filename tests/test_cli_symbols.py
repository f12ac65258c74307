"""Symbols given on the command line or in a config file: normalised, or one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.demo import DEMO_START

runner = CliRunner()


def test_backtest_symbols_are_normalised(tmp_path: Path, demo_store_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, store)
    day = str(DEMO_START)
    res = runner.invoke(
        app,
        ["backtest", "--store", str(store), "--symbols", " aapl, Msft ", "--start", day,
         "--end", day, "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["sessions"][0]["rows"]
    assert [r["symbol"] for r in rows] == ["AAPL", "MSFT"]


@pytest.mark.parametrize(
    ("symbols", "reason"),
    [
        ("AAPL,,MSFT", "symbol '' is empty"),
        ("AAPL,", "symbol '' is empty"),
        ("BRK B", "symbol 'BRK B' contains whitespace"),
        ("AAPL,aapl", "duplicate symbol 'AAPL'"),
    ],
)
@pytest.mark.parametrize("command", ["backtest", "report", "live"])
def test_bad_symbols_on_the_command_line_are_one_line_errors(
    tmp_path: Path, demo_store_path: Path, command: str, symbols: str, reason: str
) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, store)
    res = runner.invoke(app, [command, "--store", str(store), "--symbols", symbols])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and reason in lines[0]
    assert "--symbols" in lines[0]


def test_bad_symbol_in_a_config_file_is_one_line(tmp_path: Path, demo_store_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('symbols = ["AAPL", " "]\n')
    res = runner.invoke(app, ["backtest", "--store", str(demo_store_path), "--config", str(cfg)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert "symbols: symbol ' ' is empty" in lines[0]
