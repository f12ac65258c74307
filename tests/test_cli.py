"""The command line as a user runs it: demo, import, backtest, with JSON output."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sessionflow.cli.app import app

runner = CliRunner()


def test_demo_json_reports_the_early_close_and_gappy_symbols(tmp_path: Path) -> None:
    store = tmp_path / "demo.duckdb"
    result = runner.invoke(app, ["demo", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    by_day = {s["session"]: s for s in out["sessions"]}
    assert "2024-11-28" not in by_day
    friday = by_day["2024-11-29"]
    assert friday["early_close"] is True
    assert {r["expected"] for r in friday["rows"]} == {210}
    nvda = [r for s in out["sessions"] for r in s["rows"] if r["symbol"] == "NVDA"]
    assert all(r["quality"] < 100 for r in nvda)
    again = runner.invoke(app, ["demo", "--store", str(store), "--json"])
    assert json.loads(again.stdout) == out  # the store is built once; runs are deterministic


def test_import_then_backtest(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n"
        "2024-11-29T09:31:00-05:00,10,9,11,10,100\n"
    )
    store = tmp_path / "s.duckdb"
    res = runner.invoke(
        app, ["import", "bars", str(csv), "--symbol", "xyz", "--store", str(store), "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)[0]
    assert report["imported"] == 1
    assert report["rejections"] == [
        {
            "line": 3,
            "reason": "high_below_low",
            "detail": "2024-11-29T09:31:00-05:00,10,9,11,10,100",
        }
    ]
    res = runner.invoke(
        app,
        [
            "backtest",
            "--store",
            str(store),
            "--symbols",
            "XYZ",
            "--start",
            "2024-11-29",
            "--end",
            "2024-11-29",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["sessions"][0]["rows"][0]
    assert (row["bars"], row["expected"], row["volume"]) == (1, 210, 100)


def test_bad_file_exits_nonzero_with_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    res = runner.invoke(
        app, ["import", "bars", str(bad), "--symbol", "X", "--store", str(tmp_path / "s.duckdb")]
    )
    assert res.exit_code == 1
    assert "missing column" in res.output and "store unchanged" in res.output


def test_backtest_unknown_symbol_is_reported(tmp_path: Path) -> None:
    runner.invoke(app, ["demo", "--store", str(tmp_path / "d.duckdb"), "--json"])
    res = runner.invoke(
        app,
        [
            "backtest",
            "--store",
            str(tmp_path / "d.duckdb"),
            "--symbols",
            "ZZZZ",
            "--start",
            "2024-11-29",
            "--end",
            "2024-11-29",
        ],
    )
    assert res.exit_code == 2
    assert "ZZZZ" in res.output
