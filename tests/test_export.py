"""``sessionflow export bars``: bars exactly as a backtest delivers them, and back in by import."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sessionflow import BarEvent, DerivedBarEvent
from sessionflow.cli.app import app
from sessionflow.models import to_us
from sessionflow.store import DuckDBStore
from tests.helpers import cli_result, demo_settings, error_line, run_collect

SYMBOLS = ["AAPL", "NVDA"]  # NVDA misses about 3% of its minutes in the demo data
START, END = "2024-11-27", "2024-12-02"  # the 2024-11-28 holiday, the 2024-11-29 early close

Row = tuple[str, int, float, float, float, float, int, int]


def export(store: Path, out: Path, interval: str, fmt: str = "csv", *extra: str) -> str:
    args = ["export", "bars", "--store", str(store), "--symbols", ",".join(SYMBOLS)]
    args += ["--start", START, "--end", END, "--interval", interval, "--format", fmt]
    result = CliRunner().invoke(app, [*args, "--output", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.stdout


def read_csv(path: Path) -> tuple[list[str], list[Row]]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [
            (s, to_us(datetime.fromisoformat(t)), float(o), float(h), float(lo), float(c),
             int(v), int(m))
            for s, t, o, h, lo, c, v, m in reader
        ]  # fmt: skip
    return header, rows


def delivered(store: Path, interval: int) -> list[Row]:
    settings = demo_settings(
        store,
        symbols=SYMBOLS,
        start=date.fromisoformat(START),
        end=date.fromisoformat(END),
        derived_intervals=[interval] if interval > 1 else [5],
    )
    _, events = run_collect(settings)
    out: list[Row] = []
    for ev in events:
        if interval == 1 and isinstance(ev, BarEvent):
            b = ev.bar
        elif interval > 1 and isinstance(ev, DerivedBarEvent):
            assert not ev.revised
            b = ev.bar
        else:
            continue
        out.append((b.symbol, to_us(b.ts), b.open, b.high, b.low, b.close, b.volume, b.minutes))
    return out


@pytest.mark.parametrize("interval", [1, 5, 15, 7])
def test_export_equals_what_a_backtest_delivers(
    demo_store_path: Path, tmp_path: Path, interval: int
) -> None:
    out = tmp_path / f"bars_{interval}m.csv"
    export(demo_store_path, out, f"{interval}m")
    header, rows = read_csv(out)
    assert header == ["symbol", "timestamp", "open", "high", "low", "close", "volume", "minutes"]
    want = delivered(demo_store_path, interval)
    assert rows == want
    early = [
        r for r in rows if datetime.fromtimestamp(r[1] / 1e6, UTC).date() == date(2024, 11, 29)
    ]
    assert early and max(r[1] for r in early) < to_us(datetime.fromisoformat("2024-11-29T18:00Z"))
    if interval == 7:  # 390 = 55*7 + 5 and 210 = 30*7: one short window per full session
        assert {r[7] for r in rows} == {7, 5}
        assert sum(1 for r in rows if r[7] == 5 and r[0] == "AAPL") == 2
    nvda = [r for r in rows if r[0] == "NVDA"]
    assert nvda and sum(r[6] for r in nvda) == sum(r[6] for r in want if r[0] == "NVDA")


def test_csv_timestamps_are_iso_utc_with_offset(demo_store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.csv"
    export(demo_store_path, out, "15m")
    first = out.read_text().splitlines()[1].split(",")
    assert first[:2] == ["AAPL", "2024-11-27T14:30:00+00:00"]


def test_parquet_has_a_tz_aware_timestamp_and_equal_values(
    demo_store_path: Path, tmp_path: Path
) -> None:
    export(demo_store_path, tmp_path / "b.csv", "5m")
    export(demo_store_path, tmp_path / "b.parquet", "5m", "parquet")
    table = pq.read_table(tmp_path / "b.parquet")
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    _, rows = read_csv(tmp_path / "b.csv")
    cols = table.to_pydict()
    got = [
        (s, to_us(t), o, h, lo, c, v, m)
        for s, t, o, h, lo, c, v, m in zip(*(cols[k] for k in table.column_names), strict=True)
    ]
    assert got == rows


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_exported_1m_reimports_as_all_new_identical_rows(
    demo_store_path: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"bars.{fmt}"
    export(demo_store_path, out, "1m", fmt)
    fresh = tmp_path / "fresh.duckdb"
    done = CliRunner().invoke(app, ["import", "bars", str(out), "--store", str(fresh), "--json"])
    assert done.exit_code == 0, done.output
    (report,) = json.loads(done.stdout)
    assert report["rejected"] == {} and report["new"] == report["rows"] > 0
    a, b = DuckDBStore(demo_store_path, read_only=True), DuckDBStore(fresh, read_only=True)
    lo, hi = (
        datetime.fromisoformat("2024-11-27T00:00Z"),
        datetime.fromisoformat("2024-12-03T00:00Z"),
    )
    x, y = a.load_bars(SYMBOLS, lo, hi), b.load_bars(SYMBOLS, lo, hi)
    assert report["new"] == len(x) == len(y)
    for field in ("symbol", "ts_us", "open", "high", "low", "close", "volume"):
        assert getattr(x, field).tolist() == getattr(y, field).tolist(), field
    a.close()
    b.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_exported_5m_file_is_refused_by_import_not_stored_as_1m(
    demo_store_path: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"bars5.{fmt}"
    export(demo_store_path, out, "5m", fmt)
    fresh = tmp_path / "fresh.duckdb"
    done = cli_result("import", "bars", out, "--store", fresh)
    assert done.exit_code == 1, done.output
    line = error_line(done, "aborted:")
    assert line.startswith(f"aborted: {out}: line 2: minutes '5': this file holds 5-minute bars")
    assert not fresh.exists() or DuckDBStore(fresh, read_only=True).count_bars() == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--interval", "0m"], "--interval"),
        (["--interval", "5x"], "--interval"),
        (["--format", "xlsx"], "--format"),
        (["--symbols", "ZZZZ"], "ZZZZ"),
        (["--start", "2024-13-01"], "--start"),
        (["--start", "2024-11-28", "--end", "2024-11-28"], "no XNYS sessions"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(
    demo_store_path: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    base = {"--symbols": "AAPL", "--start": START, "--end": END, "--interval": "5m",
            "--format": "csv"}  # fmt: skip
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    out = tmp_path / "x.csv"
    flat = [x for kv in base.items() for x in kv]
    result = CliRunner().invoke(
        app, ["export", "bars", "--store", str(demo_store_path), *flat, "--output", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:") and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_unwritable_output_is_one_line_and_leaves_nothing(
    demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "no" / "such" / "dir" / "x.csv"
    result = CliRunner().invoke(
        app, ["export", "bars", "--store", str(demo_store_path), "--start", START, "--end", END,
              "--output", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: cannot write {out}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
