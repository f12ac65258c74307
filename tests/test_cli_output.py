"""Reasons go to stderr as one line, whatever the path length and the terminal width.

A user's temporary folder can be long and their terminal narrow; a reason that rich
wraps at the width (or that lands on stdout between the results) breaks every script
that greps for it. Each command here runs with COLUMNS=40 under a path longer than that.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.helpers import cli_result, error_line

NARROW = {"COLUMNS": "40", "LINES": "10"}
HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n"


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    """A folder whose path alone is longer than two narrow terminal lines."""
    path = tmp_path / ("a-rather-long-folder-name-" * 3) / ("and-another-one-" * 3)
    path.mkdir(parents=True)
    assert len(str(path)) > 2 * 40
    return path


def test_a_file_reason_is_one_stderr_line_with_the_whole_path(deep: Path) -> None:
    bad = deep / "five-minute-bars.csv"
    bad.write_text(
        "symbol,timestamp,open,high,low,close,volume,minutes\n"
        "AAPL,2024-11-29T14:30:00Z,10,11,9,10.5,100,5\n"
    )
    res = cli_result("import", "bars", bad, "--store", deep / "s.duckdb", env=NARROW)
    assert res.exit_code == 1
    line = error_line(res, "aborted:")
    assert line.startswith(f"aborted: {bad}: line 2: minutes '5'")
    assert line.endswith("(sessionflow derives longer ones)")
    assert res.stdout == ""  # no result: nothing on stdout
    assert error_line(res, "error:").endswith("nothing was written (store unchanged)")


def test_the_import_report_is_unwrapped_on_stdout(deep: Path) -> None:
    good = deep / "a-good-file-with-a-long-name.csv"
    good.write_text(HEADER + GOOD)
    res = cli_result("import", "bars", good, "--symbol", "X", "--store", deep / "s.duckdb",
                     env=NARROW)  # fmt: skip
    assert res.exit_code == 0, res.output
    first = res.stdout.splitlines()[0]
    assert first == f"{good}: 1 row: 1 new, 0 unchanged, 0 replaced, 0 rejected"
    assert res.stderr == ""


def test_an_unreadable_lean_zip_is_one_stderr_line(deep: Path) -> None:
    folder = deep / "lean" / "abc"
    folder.mkdir(parents=True)
    bomb = folder / "20241127_trade.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("abc.csv", "34200000,1000000,1010000,990000,1000000,100\n" * 40_000)
    config = deep / "c.toml"
    config.write_text("import_max_unzipped_mb = 0.5\n")
    res = cli_result("import", "lean", folder, "--store", deep / "s.duckdb", "--config", config,
                     env=NARROW)  # fmt: skip
    assert res.exit_code == 1
    line = error_line(res, "aborted:")
    assert str(bomb) in line and "limit of 524,288 bytes" in line
    assert res.stdout == ""


def test_a_command_error_is_one_stderr_line(deep: Path) -> None:
    res = cli_result("backtest", "--store", deep / "missing-store.duckdb", "--symbols", "AAPL",
                     "--start", "2024-11-25", "--end", "2024-11-25", env=NARROW)  # fmt: skip
    assert res.exit_code == 2
    assert str(deep / "missing-store.duckdb") in error_line(res, "error:")
    assert res.stdout == ""
