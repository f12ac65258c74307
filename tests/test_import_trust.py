"""Import as a user runs it: symbols, naive times, out-of-range values, conflicts, counts.

Every case goes through the CLI (or the importer API) against a real DuckDB file and
checks what the store holds afterwards, not only what was printed.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sessionflow.check.stores import store_checksum
from sessionflow.cli.app import app
from sessionflow.importer import ImportError_, import_bars, import_lean
from sessionflow.models import MAX_VOLUME
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import cli_result, error_line

runner = CliRunner()
HEADER = "timestamp,open,high,low,close,volume\n"
A = "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n"
B = "2024-11-29T09:31:00-05:00,10.5,11.5,10,11,250\n"


def cli(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rows(store: Path) -> list[tuple[object, ...]]:
    db = DuckDBStore(store)
    try:
        got = (
            db._cursor()
            .execute(
                "SELECT symbol, epoch_us(ts), open, high, low, close, volume FROM bars_1m "
                "ORDER BY symbol, ts"
            )
            .fetchall()
        )
    finally:
        db.close()
    return [tuple(r) for r in got]


# item 2: --symbol vs a symbol column, one normaliser


def test_symbol_option_with_a_symbol_column_is_a_clear_error(tmp_path: Path) -> None:
    f = write(
        tmp_path / "two.csv",
        "symbol,timestamp,open,high,low,close,volume\n"
        "IBM,2024-11-29T09:30:00-05:00,10,11,9,10,1\n"
        "ORCL,2024-11-29T09:30:00-05:00,20,21,19,20,1\n",
    )
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", f, "--symbol", "X", "--store", store)
    assert res.exit_code == 1
    line = error_line(res, "aborted:")
    assert str(f) in line and "symbol column" in line and "--symbol X" in line
    assert rows(store) == []


def test_symbols_are_normalised_and_bad_ones_rejected_by_line(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    text = (
        "symbol,timestamp,open,high,low,close,volume\n"
        " ibm ,2024-11-29T09:30:00-05:00,10,11,9,10,1\n"  # 2 -> IBM
        "IBM,2024-11-29T09:31:00-05:00,10,11,9,10,1\n"  # 3 same symbol
        "a b,2024-11-29T09:30:00-05:00,10,11,9,10,1\n"  # 4 whitespace
        ",2024-11-29T09:30:00-05:00,10,11,9,10,1\n"  # 5 empty
        '"X,Y",2024-11-29T09:30:00-05:00,10,11,9,10,1\n'  # 6 comma
        "Z\x01,2024-11-29T09:30:00-05:00,10,11,9,10,1\n"  # 7 control character
    )
    store = DuckDBStore(tmp_path / "s.duckdb")
    report = import_bars(store, write(tmp_path / "s.csv", text), calendar)
    assert [(ln, r) for ln, r, _ in report.rejections] == [(n, "bad_symbol") for n in (4, 5, 6, 7)]
    assert "whitespace" in report.rejections[0][2] and "comma" in report.rejections[2][2]
    assert store.symbols() == ["IBM"] and store.count_bars() == 2
    with pytest.raises(ImportError_, match="--symbol: symbol 'a b' contains whitespace"):
        import_bars(store, write(tmp_path / "n.csv", HEADER + A), calendar, "a b")
    assert import_bars(store, tmp_path / "n.csv", calendar, " msft ").new == 1
    assert store.symbols() == ["IBM", "MSFT"]
    store.close()


# item 3: naive timestamps need --tz


def test_naive_times_without_tz_stop_before_writing_and_name_both_readings(
    tmp_path: Path,
) -> None:
    good = write(tmp_path / "good.csv", HEADER + A)
    naive = write(
        tmp_path / "utc.csv",
        HEADER + "2024-11-29T14:30:00Z,10,11,9,10,1\n2024-11-29 14:31:00,10,11,9,10,1\n",
    )
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", good, naive, "--symbol", "U", "--store", store)
    assert res.exit_code == 1
    flat = error_line(res, "aborted:")
    assert str(naive) in flat
    assert "line 3" in flat and "'2024-11-29 14:31:00'" in flat
    assert "exchange time (America/New_York) it is 2024-11-29T19:31:00+00:00" in flat
    assert "as UTC it is 2024-11-29T14:31:00+00:00" in flat
    assert rows(store) == []  # the good file of the same command is not written either
    code, out = cli("import", "bars", naive, "--symbol", "U", "--store", store, "--tz", "UTC")
    assert code == 0, out
    got = [r[1] for r in rows(store)]
    assert got == [1732890600000000, 1732890660000000]  # 14:30Z and 14:31Z
    code, out = cli("import", "bars", good, "--symbol", "E", "--store", store, "--tz", "exchange")
    assert code == 0, out
    code, out = cli("import", "bars", good, "--symbol", "E", "--store", store, "--tz", "Mars/Base")
    assert code == 2 and "Mars/Base" in out


def test_parquet_naive_time_column_needs_tz_and_aware_columns_are_used_as_they_are(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    def table(ts: pa.Array) -> pa.Table:
        n = len(ts)
        return pa.table(
            {"ts": ts, "open": [1.0] * n, "high": [2.0] * n, "low": [0.5] * n,
             "close": [1.0] * n, "volume": pa.array([10] * n, type=pa.uint64())}
        )  # fmt: skip

    naive = tmp_path / "naive.parquet"
    pq.write_table(table(pa.array([datetime(2024, 11, 29, 14, 30)], pa.timestamp("ns"))), naive)
    store = DuckDBStore(tmp_path / "s.duckdb")
    with pytest.raises(ImportError_, match=r"naive.parquet: line 2: timestamp '2024-11-29 14:30"):
        import_bars(store, naive, calendar, "PQ")
    assert store.count_bars() == 0
    from zoneinfo import ZoneInfo

    assert import_bars(store, naive, calendar, "PQ", tz=ZoneInfo("UTC")).new == 1
    aware = tmp_path / "aware.parquet"
    stamp = pa.array([1732890660 * 10**9], pa.timestamp("ns", tz="Asia/Tokyo"))
    pq.write_table(table(stamp), aware)
    assert import_bars(store, aware, calendar, "PQ").new == 1  # 14:31Z, no --tz needed
    got = store.load_bars(["PQ"], datetime(2024, 11, 29), datetime(2024, 11, 30))
    assert [int(t) for t in got.ts_us] == [1732890600000000, 1732890660000000]
    store.close()


# items 8, 9, 10: values a vendor can send


def test_out_of_range_values_are_rejected_and_every_file_is_reported_in_json(
    tmp_path: Path,
) -> None:
    big = write(
        tmp_path / "big.csv",
        HEADER
        + A
        + f"2024-11-29T09:31:00-05:00,10,11,9,10,{2**63}\n"  # 3
        + "9999-12-31T09:32:00-05:00,10,11,9,10,1\n"  # 4
        + "0001-01-01T09:33:00-05:00,10,11,9,10,1\n"  # 5
        + f"2024-11-29T09:34:00-05:00,10,11,9,10,{MAX_VOLUME}\n"  # 6 at the bound: kept
        + f"2024-11-29T09:35:00-05:00,10,11,9,10,{MAX_VOLUME + 1}\n",  # 7
    )
    pqf = tmp_path / "u64.parquet"
    pq.write_table(
        pa.table(
            {"ts": pa.array([1732890600 * 10**6, 1732890660 * 10**6],
                            pa.timestamp("us", tz="UTC")),
             "open": [1.0, 1.0], "high": [2.0, 2.0], "low": [0.5, 0.5], "close": [1.0, 1.0],
             "volume": pa.array([2**64 - 1, 7], type=pa.uint64())}
        ),
        pqf,
    )  # fmt: skip
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "bars", big, pqf, "--symbol", "V", "--store", store, "--json")
    assert code == 0, out
    reports = json.loads(out)
    assert [r["file"] for r in reports] == [str(big), str(pqf)]
    assert [(x["line"], x["reason"]) for x in reports[0]["rejections"]] == [
        (3, "volume_out_of_range"),
        (4, "time_out_of_range"),
        (5, "time_out_of_range"),
        (7, "volume_out_of_range"),
    ]
    assert [(x["line"], x["reason"]) for x in reports[1]["rejections"]] == [
        (2, "volume_out_of_range")
    ]
    assert (reports[0]["new"], reports[1]["new"]) == (2, 1)
    assert sorted(r[6] for r in rows(store)) == [7, 100, MAX_VOLUME]


def test_bars_whose_minute_has_not_ended_are_rejected_as_from_future(tmp_path: Path) -> None:
    """A vendor file can hold a bar stamped tomorrow or the minute still running: refused."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    running = now.isoformat()  # opened at the start of this minute: not complete yet
    ahead = (now + timedelta(days=400)).isoformat()
    csv = write(
        tmp_path / "f.csv",
        HEADER + A + f"{running},10,11,9,10,1\n" + f"{ahead},10,11,9,10,1\n" + B,
    )
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "bars", csv, "--symbol", "F", "--store", store, "--json")
    assert code == 0, out
    (report,) = json.loads(out)
    future = [(x["line"], x["reason"]) for x in report["rejections"]]
    assert future == [(3, "from_future"), (4, "from_future")]
    assert "has not ended yet" in report["rejections"][0]["detail"]
    assert [r[1] for r in rows(store)] == [1732890600 * 10**6, 1732890660 * 10**6]


def test_bad_numbers_and_sub_microsecond_times_are_rejected_naming_the_field(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    text = HEADER + (
        "2024-11-29T09:30:00-05:00,0,11,9,10,1\n"  # 2 price 0
        "2024-11-29T09:31:00-05:00,10,11,-9,10,1\n"  # 3 negative low
        "2024-11-29T09:32:00-05:00,10,1e308,9,10,1\n"  # 4 absurd high
        "2024-11-29T09:33:00-05:00,1_000,1_100,900,1000,1\n"  # 5 underscores
        "2024-11-29T09:34:00.000000001-05:00,10,11,9,10,1\n"  # 6 sub-microsecond
        "2024-11-29T09:35:00-05:00,10,11,9,10,100.5\n"  # 7 fractional volume
        "2024-11-29T09:36:00-05:00,10,11,9,10,1_0\n"  # 8 underscore volume
        "2024-11-29T09:37:00.000000000-05:00,10,11,9,10,1\n"  # 9 nine zero digits: fine
        "2024-11-29T09:38:00-05:00,10,11,9,nan,1\n"  # 10 NaN close
        "2024-11-29T09:39:00-05:00,10,11,9,１０,1\n"  # 11 full-width digits
    )
    store = DuckDBStore(":memory:")
    report = import_bars(store, write(tmp_path / "n.csv", text), calendar, "N")
    assert report.rejections == [
        (2, "non_positive_price", "open '0'"),
        (3, "non_positive_price", "low '-9'"),
        (4, "price_out_of_range", "high '1e308' above 1e+09"),
        (5, "bad_number", "open '1_000'"),
        (6, "not_minute_aligned",
         "time '2024-11-29T09:34:00.000000001-05:00' has a sub-microsecond part"),
        (7, "bad_number", "volume '100.5'"),
        (8, "bad_number", "volume '1_0'"),
        (10, "nan_or_inf", "close 'nan'"),
        (11, "bad_number", "close '１０'"),
    ]  # fmt: skip
    assert store.count_bars() == 1


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.csv", text)
    return buf.getvalue()


def test_lean_rows_get_the_same_bounds(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    day = tmp_path / "lean" / "abc"
    day.mkdir(parents=True)
    lines = [
        "34200000,1000000,1010000,990000,1000000,100",  # 1 ok
        "34260000,0,1010000,990000,1000000,100",  # 2 price 0
        f"34320000,1000000,1010000,990000,1000000,{MAX_VOLUME + 1}",  # 3
        "34380000,1_000_000,1010000,990000,1000000,100",  # 4 underscore
        f"34440000,1000000,1010000,990000,1000000,{MAX_VOLUME}",  # 5 ok, at the bound
        "34500000,6000000000000,6000000000000,6000000000000,6000000000000,1",  # 6 $6e8: ok
        "34560000,1e308,1e308,1e308,1e308,1",  # 7
    ]
    (day / "20241127_trade.zip").write_bytes(_zip("\n".join(lines) + "\n"))
    store = DuckDBStore(tmp_path / "s.duckdb")
    (report,) = import_lean(store, tmp_path / "lean", calendar)
    assert [(ln, r) for ln, r, _ in report.rejections] == [
        (2, "non_positive_price"),
        (3, "volume_out_of_range"),
        (4, "bad_number"),
        (7, "price_out_of_range"),
    ]
    assert store.count_bars() == report.new == 3
    store.close()


def test_a_lean_day_that_has_not_happened_is_from_future(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    day = tmp_path / "lean" / "abc"
    day.mkdir(parents=True)
    later = (datetime.now(UTC) + timedelta(days=400)).strftime("%Y%m%d")
    for name in (f"{later}_trade.zip", "20241127_trade.zip"):
        (day / name).write_bytes(_zip("34200000,1000000,1010000,990000,1000000,100\n"))
    store = DuckDBStore(tmp_path / "s.duckdb")
    why = f"{later}_trade.zip: no row could be imported.*from_future"
    with pytest.raises(ImportError_, match=why):
        import_lean(store, tmp_path / "lean", calendar)
    assert store.count_bars() == 0  # one transaction: the good day waits for a fixed folder
    store.close()


def test_lean_folder_that_is_not_a_symbol_is_a_clear_error(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    bad = tmp_path / "lean" / "a b"
    bad.mkdir(parents=True)
    (bad / "20241127_trade.zip").write_bytes(_zip("34200000,1,1,1,1,1\n"))
    with pytest.raises(ImportError_, match=r"a b: bad_symbol: .*whitespace"):
        import_lean(DuckDBStore(":memory:"), tmp_path / "lean", calendar)


# item 4: conflicts inside one command, and the new/unchanged/replaced counts


def test_user_sequence_conflict_replace_and_identical_reimport(tmp_path: Path) -> None:
    one = write(tmp_path / "one.csv", HEADER + A + B)
    two = write(tmp_path / "two.csv", HEADER + A.replace(",10.5,100", ",10.75,100") + B)
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "bars", one, "--symbol", "AAPL", "--store", store)
    assert code == 0, out
    before = rows(store)
    res = cli_result("import", "bars", one, two, "--symbol", "AAPL", "--store", store)
    assert res.exit_code == 1
    flat = error_line(res, "error:")
    assert "1 row(s) conflict" in flat and "--on-conflict" in flat
    assert "AAPL 2024-11-29T14:30:00+00:00" in flat and "line 2" in flat
    assert rows(store) == before  # nothing written
    code, out = cli(
        "import", "bars", one, two, "--symbol", "AAPL", "--store", store,
        "--on-conflict", "replace", "--json",
    )  # fmt: skip
    assert code == 0, out
    r1, r2 = json.loads(out)
    assert (r1["new"], r1["unchanged"], r1["replaced"]) == (0, 2, 0)
    assert (r2["new"], r2["unchanged"], r2["replaced"]) == (0, 1, 1)
    assert [r[5] for r in rows(store)] == [10.75, 11.0]
    code, out = cli("import", "bars", two, "--symbol", "AAPL", "--store", store, "--json")
    assert code == 0, out
    (again,) = json.loads(out)
    assert (again["new"], again["unchanged"], again["replaced"], again["imported"]) == (0, 2, 0, 2)
    code, flat = cli("import", "bars", one, "--symbol", "AAPL", "--store", store)
    assert code == 0, flat
    assert "1 replaced" in flat and "1 unchanged" in flat  # differs from stored: replaced


def test_keep_policy_and_identical_rows_in_two_files(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    one = write(tmp_path / "one.csv", HEADER + A)
    two = write(tmp_path / "two.csv", HEADER + A.replace(",10.5,100", ",10.75,100") + B)
    same = write(tmp_path / "same.csv", HEADER + A)
    store = tmp_path / "s.duckdb"
    code, out = cli("import", "bars", one, same, "--symbol", "K", "--store", store, "--json")
    assert code == 0, out  # identical values in two files: not a conflict
    assert [(r["new"], r["unchanged"]) for r in json.loads(out)] == [(1, 0), (0, 1)]
    code, out = cli(
        "import", "bars", two, "--symbol", "K", "--store", store, "--on-conflict", "keep",
        "--json",
    )  # fmt: skip
    assert code == 0, out
    (r,) = json.loads(out)
    assert (r["new"], r["kept"], r["replaced"]) == (1, 1, 0)
    assert [row[5] for row in rows(store)] == [10.5, 11.0]


def test_lean_folders_differing_only_in_case_conflict(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    root = tmp_path / "lean"
    for name, close in (("dup", 1000000), ("DUP", 1000100)):
        (root / name).mkdir(parents=True)
        row = f"34200000,1000000,1010000,990000,{close},100\n"
        (root / name / "20241127_trade.zip").write_bytes(_zip(row))
    store = DuckDBStore(tmp_path / "s.duckdb")
    before = store_checksum(store)
    with pytest.raises(ImportError_, match=r"1 row\(s\) conflict.*DUP 2024-11-27T14:30"):
        import_lean(store, root, calendar)
    assert store_checksum(store) == before
    reports = import_lean(store, root, calendar, on_conflict="replace")
    assert [(r.new, r.replaced) for r in reports] == [(1, 0), (0, 1)]
    assert store.symbols() == ["DUP"] and store.count_bars() == 1
    store.close()


# item 16: bounded memory


def test_zip_member_above_the_cap_is_refused_naming_zip_and_sizes(tmp_path: Path) -> None:
    root = tmp_path / "lean" / "big"
    root.mkdir(parents=True)
    row = "34200000,1000000,1010000,990000,1000000,100\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.csv", row * (24 * 1024 * 1024 // len(row)))  # ~24 MiB of text
    bomb = root / "20241127_trade.zip"
    bomb.write_bytes(buf.getvalue())
    small = tmp_path / "lean" / "small"
    small.mkdir()
    (small / "20241127_trade.zip").write_bytes(_zip(row))
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "lean", tmp_path / "lean", "--store", store)
    assert res.exit_code == 1
    flat = error_line(res, "aborted:")
    assert str(bomb) in flat and "big.csv" in flat
    assert "expands to 25,165," in flat and "limit of 16,777,216 bytes" in flat
    assert rows(store) == []
    config = write(tmp_path / "c.toml", "import_max_unzipped_mb = 0.5\n")
    res = cli_result("import", "lean", root, "--store", store, "--config", config)
    assert res.exit_code == 1 and "limit of 524,288 bytes" in error_line(res, "aborted:")
    code, out = cli("import", "lean", small, "--store", store, "--config", config)
    assert code == 0, out
    code, out = cli("import", "lean", root, "--store", store, "--max-unzipped-mb", "32")
    assert code == 0 and "expands" not in out  # read now: one new row, the rest duplicates
    assert "1 new" in out and "duplicate" in out


def test_a_large_csv_imports_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.5M rows (~90 MB): peak RSS of the import process stays under 600 MB."""
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from import_bench import import_once, write_csv

    csv_path = tmp_path / "big.csv"
    n = write_csv(csv_path, 1_500_000)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))  # the child runs this checkout
    report, _, peak_mb = import_once(csv_path, tmp_path / "s.duckdb")
    assert report["new"] == n
    assert peak_mb < 600, peak_mb
