"""What a newcomer hit (issue 20 item 18): each mistake gets a line that says what to do.

A data file given as ``--store``, a failed import into a new store, the default store
path (relative to the working directory), ``import lean`` on a parent folder and
``import bars`` on a directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import cli_result, error_line

HEADER = "timestamp,open,high,low,close,volume\n"
DAY = ["--symbols", "AAPL", "--start", "2024-11-25", "--end", "2024-11-25"]


def test_a_data_file_as_store_says_it_is_not_a_duckdb_file(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(HEADER + "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n")
    before = data.read_bytes()
    for args in (["backtest", *DAY], ["import", "bars", str(data), "--symbol", "X"],
                 ["store", "info"]):  # fmt: skip
        res = cli_result(*args, "--store", data)
        assert res.exit_code == 2, res.output
        line = error_line(res, "error:")
        assert line.startswith(f"error: store {data} is damaged or not a sessionflow store: "
                               "not a DuckDB file (it starts with b'timestamp,op')")  # fmt: skip
        assert "read-only mode" not in line and "a data file is imported with" in line
    assert data.read_bytes() == before


def test_a_failed_import_leaves_no_new_store_file_behind(tmp_path: Path) -> None:
    bad = tmp_path / "header-only.csv"
    bad.write_text(HEADER)
    store = tmp_path / "new.duckdb"
    res = cli_result("import", "bars", bad, "--symbol", "X", "--store", store)
    assert res.exit_code == 1
    assert error_line(res, "error:").endswith("nothing was written (store unchanged)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["header-only.csv"]


def test_a_failed_actions_import_leaves_no_new_store_file_behind(tmp_path: Path) -> None:
    actions = tmp_path / "actions.csv"
    actions.write_text("symbol,ex_date,split,dividend\nAAPL,2024-11-27,,0.25\n")  # no bars
    store = tmp_path / "new.duckdb"
    res = cli_result("import", "actions", actions, "--store", store)
    assert res.exit_code == 1
    assert error_line(res, "error:").endswith("no importable row (store unchanged)")
    assert not store.exists()


def test_a_failed_import_keeps_an_existing_store(tmp_path: Path, demo_store_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, store)
    before = store.read_bytes()
    bad = tmp_path / "header-only.csv"
    bad.write_text(HEADER)
    assert cli_result("import", "bars", bad, "--symbol", "X", "--store", store).exit_code == 1
    assert store.read_bytes() == before


def test_the_default_store_error_says_it_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = cli_result("backtest", *DAY)
    assert res.exit_code == 2
    assert error_line(res, "error:") == (
        "error: store data/sessionflow.duckdb does not exist (a path relative to the working "
        f"directory: {tmp_path}/data/sessionflow.duckdb); run `sessionflow demo` or import "
        "your data, or pass --store"
    )


def test_import_lean_on_a_parent_folder_names_the_folder_to_give(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "shared" / "data" / "lean-minute" / "aapl"
    minute = tmp_path / "top" / "equity" / "usa" / "minute"
    (minute / "aapl").mkdir(parents=True)
    zips = sorted(source.glob("*_trade.zip"))[:1]
    if not zips:  # any zip name will do for the hint; the real one when it is there
        (minute / "aapl" / "20140605_trade.zip").write_bytes(b"")
    for z in zips:
        shutil.copy(z, minute / "aapl")
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "lean", tmp_path / "top", "--store", store)
    assert res.exit_code == 1
    assert error_line(res, "aborted:").endswith(
        f"found some in {minute / 'aapl'}: import its parent, {minute} (store unchanged)"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli_result("import", "lean", empty, "--store", store)
    assert "give the LEAN minute root (its symbol folders hold the zips)" in error_line(
        res, "aborted:"
    )
    assert not store.exists()


def test_import_bars_on_a_directory_says_what_it_takes(tmp_path: Path) -> None:
    folder = tmp_path / "bars"
    folder.mkdir()
    res = cli_result("import", "bars", folder, "--store", tmp_path / "s.duckdb")
    assert res.exit_code == 1
    assert error_line(res, "aborted:") == (
        f"aborted: {folder}: is a directory; import bars takes CSV or Parquet files (a shell "
        f"glob such as {folder}/*.csv names them); LEAN zips: sessionflow import lean {folder}"
    )
