"""Exit codes a script can trust (docs/cli.md): 0 ok, 1 import wrote nothing, 2 bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.store import DuckDBStore

runner = CliRunner()
HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n"
BAD = "2024-11-29T09:31:00-05:00,10,9,11,10,100\n"  # high below low


def _bars(store: Path) -> int:
    if not store.exists():  # a failed import into a new store leaves no file
        return 0
    db = DuckDBStore(store, read_only=True)
    try:
        return int(db._con.execute("SELECT count(*) FROM bars_1m").fetchone()[0])  # type: ignore[index]
    finally:
        db.close()


def _import(tmp_path: Path, *files: Path, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    store = tmp_path / "s.duckdb"
    args = ["import", "bars", *map(str, files), "--symbol", "X", "--store", str(store), *extra]
    res = runner.invoke(app, args)
    return res.exit_code, res.output


@pytest.mark.parametrize("body", [BAD, ""], ids=["all-rejected", "no-rows"])
def test_a_file_with_no_importable_row_exits_1_and_writes_nothing(
    tmp_path: Path, body: str
) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(HEADER + GOOD)
    bad.write_text(HEADER + body)
    code, out = _import(tmp_path, good, bad)
    assert code == 1, out
    assert "bad.csv" in out and "no row could be imported" in out
    assert _bars(tmp_path / "s.duckdb") == 0
    code, out = _import(tmp_path, good)
    assert code == 0, out


def test_strict_makes_any_rejection_exit_1_and_writes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "mixed.csv"
    f.write_text(HEADER + GOOD + BAD)
    code, out = _import(tmp_path, f, extra=("--strict",))
    assert code == 1, out
    assert "--strict" in out and "line 3" in out and "high_below_low" in out
    assert _bars(tmp_path / "s.duckdb") == 0
    code, out = _import(tmp_path, f)  # without --strict the good row goes in
    assert code == 0, out
    assert _bars(tmp_path / "s.duckdb") == 1


@pytest.fixture
def store(tmp_path: Path, demo_store_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, path)
    return path


@pytest.mark.parametrize("command", ["backtest", "report"])
def test_nothing_stored_for_the_whole_request_is_an_error(store: Path, command: str) -> None:
    args = [command, "--store", str(store), "--symbols", "AAPL,MSFT"]
    res = runner.invoke(app, [*args, "--start", "2025-03-03", "--end", "2025-03-04", "--json"])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: no stored bars") and "AAPL, MSFT" in line
    assert "2025-03-03" in line and "2025-03-04" in line


@pytest.mark.parametrize("command", ["backtest", "report"])
def test_some_empty_symbol_sessions_are_named_in_one_warning(store: Path, command: str) -> None:
    db = DuckDBStore(store)
    db._con.execute(
        "DELETE FROM bars_1m WHERE symbol = 'NVDA' AND ts >= '2024-11-26 00:00:00+00' "
        "AND ts < '2024-11-27 00:00:00+00'"
    )
    db.close()
    args = [command, "--store", str(store), "--symbols", "AAPL,NVDA", "--json"]
    res = runner.invoke(app, [*args, "--start", "2024-11-25", "--end", "2024-11-26"])
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: no stored bars for NVDA on 2024-11-26"], res.stderr
    json.loads(res.stdout)  # stdout stays pure JSON


def test_a_failed_import_ends_in_one_error_line_on_stderr(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + BAD)
    res = runner.invoke(
        app, ["import", "bars", str(f), "--symbol", "X", "--store", str(tmp_path / "s.duckdb")]
    )
    assert res.exit_code == 1
    *reasons, line = res.stderr.strip().splitlines()  # the file's reason, then the summary
    assert [r.split(": ")[0] for r in reasons] == ["aborted"] and str(f) in reasons[0]
    assert line.startswith("error: ") and "bad.csv" in line and "nothing was written" in line
    assert res.stdout == ""
