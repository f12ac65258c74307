"""A CSV line and a Parquet row group are bounded before they are held in memory.

Issue 20 item 17: a CSV with one 800 MB line reached 1.9 GB before failing (a
``MemoryError`` traceback under a memory limit); a 50M-row Parquet file in one row
group ran for ten minutes. Each is now one line naming the file and where.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sessionflow.importer import ImportReport
from sessionflow.importer import bars as bar_files
from sessionflow.importer.bars import ImportError_, iter_bar_file
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import cli_result, error_line

HEADER = "timestamp,open,high,low,close,volume\n"
ROW = "2024-11-26T09:30:00-05:00,10,11,9,10.5,100\n"
OPEN_US = 1_732_631_400_000_000  # 2024-11-26 09:30 ET


def test_a_line_above_the_bound_is_one_line_naming_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bar_files, "MAX_LINE_CHARS", 4096)
    f = tmp_path / "long.csv"
    f.write_text(HEADER + ROW + "9" * 10_000 + "\n" + ROW)
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", f, "--symbol", "X", "--store", store)
    assert res.exit_code == 1
    assert error_line(res, "aborted:") == (
        f"aborted: {f}: line 3 is longer than 4,096 characters (a bar row is under 200): "
        "not a bar CSV, or a file without line breaks"
    )
    f.write_text(HEADER + ROW + "9" * 4000 + "\n")  # at the bound: read, rejected as a row
    res = cli_result("import", "bars", f, "--symbol", "X", "--store", store, "--json")
    assert res.exit_code == 0, res.output


def test_a_40_mb_line_fails_in_bounded_memory(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    f = tmp_path / "one-line.csv"
    with f.open("w") as fh:
        fh.write(HEADER)
        for _ in range(40):
            fh.write("1," * 500_000)  # 40 MB without a line break
    tracemalloc.start()
    try:
        with pytest.raises(ImportError_, match=r"line 2 is longer than 1,048,576 characters"):
            for _ in iter_bar_file(f, calendar, ImportReport(str(f)), "X"):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # the line is 40 MB; the reader held a few MB at most


def write_parquet(path: Path, rows: int, group: int) -> None:
    ones = np.ones(rows)
    stamps = OPEN_US + 60_000_000 * np.arange(rows, dtype=np.int64)
    table = pa.table({
        "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "open": ones, "high": ones, "low": ones, "close": ones,
        "volume": np.ones(rows, dtype=np.int64),
    })  # fmt: skip
    pq.write_table(table, path, row_group_size=group)


def test_a_parquet_row_group_above_the_bound_is_refused_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bar_files, "MAX_ROW_GROUP_BYTES", 2_000)  # 390 rows: about 4 kB
    one = tmp_path / "one-group.parquet"
    write_parquet(one, 390, 390)
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", one, "--symbol", "X", "--store", store)
    assert res.exit_code == 1
    line = error_line(res, "aborted:")
    assert line.startswith(f"aborted: {one}: row group 0 holds 390 rows (")
    assert "above the limit of 2,000 bytes read at once; rewrite it with smaller row groups" in line
    many = tmp_path / "small-groups.parquet"
    write_parquet(many, 390, 50)
    res = cli_result("import", "bars", many, "--symbol", "X", "--store", store)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"{many}: 390 rows: 390 new")
