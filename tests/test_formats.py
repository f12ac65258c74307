"""The file formats of docs/formats.md, as a user imports them through the CLI.

Each case writes a real file, runs ``sessionflow import bars`` on a real DuckDB file
and checks what was printed and what the store holds.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sessionflow.check.bad_input import lean_trade_zip
from sessionflow.cli.app import app
from sessionflow.importer.validate import REASONS
from sessionflow.store import DuckDBStore
from tests.helpers import cli_result, error_line

runner = CliRunner()
DOC = Path(__file__).resolve().parent.parent / "docs" / "formats.md"
HEADER = "timestamp,open,high,low,close,volume\n"
T0 = 1732890600  # 2024-11-29 09:30 America/New_York, in seconds since 1970-01-01 UTC
ISO = ["2024-11-29T09:30:00-05:00", "2024-11-29T09:31:00-05:00"]
ROWS = ["10,11,9,10.5,100", "10.5,11.5,10,11,250"]


def cli(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def stored(store: Path) -> list[tuple[object, ...]]:
    if not store.exists():
        return []
    db = DuckDBStore(store)
    try:
        got = (
            db._cursor()
            .execute("SELECT symbol, epoch_us(ts), open, volume FROM bars_1m ORDER BY symbol, ts")
            .fetchall()
        )
    finally:
        db.close()
    return [tuple(r) for r in got]


EXPECTED = [("X", T0 * 1_000_000, 10.0, 100), ("X", (T0 + 60) * 1_000_000, 10.5, 250)]


def test_every_rejection_reason_is_explained_in_the_formats_doc() -> None:
    table = {m[1] for m in re.finditer(r"^\| `([a-z_]+)` \|", DOC.read_text(), re.M)}
    assert set(REASONS) <= table, sorted(set(REASONS) - table)


def test_a_utf8_bom_before_the_header_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bom.csv"
    f.write_bytes(("\ufeff" + HEADER + f"{ISO[0]},{ROWS[0]}\n{ISO[1]},{ROWS[1]}\n").encode())
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "bars", f, "--symbol", "X", "--store", store)
    assert code == 0, out
    assert stored(store) == EXPECTED


@pytest.mark.parametrize(
    ("field", "cell"),
    [("open", "1_0"), ("high", "11x"), ("low", "９"), ("close", "--1"), ("volume", "100.5")],
)
def test_a_bad_number_names_its_field(tmp_path: Path, field: str, cell: str) -> None:
    cells = dict(zip(("open", "high", "low", "close", "volume"), ROWS[0].split(","), strict=True))
    cells[field] = cell
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + f"{ISO[0]},{','.join(cells.values())}\n{ISO[1]},{ROWS[1]}\n")
    code, out = cli("import", "bars", f, "--symbol", "X", "--store", tmp_path / "s.db", "--json")
    assert code == 0, out
    (report,) = json.loads(out)
    assert report["rejections"] == [
        {"line": 2, "reason": "bad_number", "detail": f"{field} {cell!r}"}
    ]


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_epoch_times_in_csv_with_their_unit(tmp_path: Path, unit: str, scale: int) -> None:
    f = tmp_path / "epoch.csv"
    f.write_text(HEADER + f"{T0 * scale},{ROWS[0]}\n{(T0 + 60) * scale},{ROWS[1]}\n")
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "bars", f, "--symbol", "X", "--epoch", unit, "--store", store)
    assert code == 0, out
    assert stored(store) == EXPECTED


def test_epoch_column_in_parquet(tmp_path: Path) -> None:
    f = tmp_path / "epoch.parquet"
    table = pa.table(
        {
            "time": pa.array([T0 * 1000, (T0 + 60) * 1000], pa.int64()),
            "open": [10.0, 10.5],
            "high": [11.0, 11.5],
            "low": [9.0, 10.0],
            "close": [10.5, 11.0],
            "volume": pa.array([100, 250], pa.int64()),
        }
    )
    pq.write_table(table, f)
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", f, "--symbol", "X", "--store", store)
    assert res.exit_code == 1
    bare = error_line(res, "aborted:")
    assert "epoch.parquet" in bare and "--epoch" in bare and "integers" in bare
    assert stored(store) == []
    code, out = cli("import", "bars", f, "--symbol", "X", "--epoch", "ms", "--store", store)
    assert code == 0, out
    assert stored(store) == EXPECTED


def test_an_integer_time_without_epoch_stops_the_file_naming_the_line(tmp_path: Path) -> None:
    f = tmp_path / "ints.csv"
    f.write_text(HEADER + f"{ISO[0]},{ROWS[0]}\n{T0 + 60},{ROWS[1]}\n")
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", f, "--symbol", "X", "--store", store)
    assert res.exit_code == 1
    bare = error_line(res, "aborted:")
    assert "line 3" in bare and f"'{T0 + 60}'" in bare and "--epoch s, ms, us or ns" in bare
    assert stored(store) == []


def test_epoch_rows_that_are_not_integers_or_not_whole_microseconds(tmp_path: Path) -> None:
    f = tmp_path / "mixed.csv"
    f.write_text(
        HEADER
        + f"{T0 * 10**9},{ROWS[0]}\n{ISO[1]},{ROWS[1]}\n{(T0 + 120) * 10**9 + 1},{ROWS[1]}\n"
        + f"{(T0 + 180) * 10**9}.0,{ROWS[1]}\n-60000000000,{ROWS[1]}\n"
    )
    store = tmp_path / "s.duckdb"
    args = ("--symbol", "X", "--epoch", "ns", "--store", store, "--json")
    code, out = cli("import", "bars", f, *args)
    assert code == 0, out
    (report,) = json.loads(out)
    assert [(r["line"], r["reason"]) for r in report["rejections"]] == [
        (3, "unparsable_time"),
        (4, "not_minute_aligned"),
        (5, "unparsable_time"),
        (6, "time_out_of_range"),
    ]
    assert "--epoch ns" in report["rejections"][0]["detail"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epoch", "s", "--tz", "UTC"], "--epoch and --tz"),
        (["--epoch", "minutes"], "--epoch 'minutes'"),
    ],
)
def test_ambiguous_or_unknown_epoch_options_are_one_line_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    f = tmp_path / "epoch.csv"
    f.write_text(HEADER + f"{T0},{ROWS[0]}\n")
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "bars", f, "--symbol", "X", *args, "--store", store)
    assert code == 2, out
    assert message in out and "Traceback" not in out
    assert not store.exists()


def test_epoch_with_a_timestamp_typed_parquet_column_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "ts.parquet"
    stamp = pa.array([T0 * 1_000_000], pa.timestamp("us", tz="UTC"))
    cols = {"open": [10.0], "high": [11.0], "low": [9.0], "close": [10.5]}
    pq.write_table(pa.table({"timestamp": stamp, **cols, "volume": [100]}), f)
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", f, "--symbol", "X", "--epoch", "s", "--store", store)
    assert res.exit_code == 1
    assert "drop --epoch" in error_line(res, "aborted:")
    assert stored(store) == []


def test_a_utf8_bom_inside_a_lean_zip_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "lean" / "aapl"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(lean_trade_zip(3))) as zf:
        text = zf.read("data.csv")
    with zipfile.ZipFile(folder / "20241129_trade.zip", "w") as zf:
        zf.writestr("20241129_aapl_minute_trade.csv", "\ufeff".encode() + text)
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "lean", folder, "--store", store, "--json")
    assert code == 0, out
    (report,) = json.loads(out)
    assert report["new"] == 3 and report["rejected"] == {}
