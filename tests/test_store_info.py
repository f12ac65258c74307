"""``sessionflow store info``: what a store holds, read-only, against the real calendar."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.demo import DEMO_END, DEMO_START, DEMO_SYMBOLS
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings, run_collect


def info(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["store", "info", *args])
    return result.exit_code, result.stdout, result.stderr


def test_demo_store_inventory_matches_a_backtest(
    demo_store_path: Path, calendar: ExchangeCalendar
) -> None:
    code, out, err = info("--store", str(demo_store_path), "--json")
    assert code == 0, err
    got = json.loads(out)
    sessions = calendar.sessions(DEMO_START, DEMO_END)
    expected = sum(s.minutes for s in sessions)  # the 13:00 early close counts 210
    assert expected == 10 * 390 + 210
    assert got["schema_version"] == 2 and got["created_by"] == "demo"
    assert got["symbols"] == sorted(DEMO_SYMBOLS)
    assert (got["first_session"], got["last_session"]) == ("2024-11-20", "2024-12-05")
    assert (got["sessions_covered"], got["calendar_sessions"]) == (11, 11)
    assert got["missing_sessions"] == []
    store = DuckDBStore(demo_store_path, read_only=True)
    assert got["rows"] == {"bars": store.count_bars(), "quotes": 0, "ticks": 0}
    store.close()
    system, _ = run_collect(demo_settings(demo_store_path))
    received = {s: 0 for s in DEMO_SYMBOLS}
    for report in system.data_manager.reports:
        for row in report.rows:
            received[row.symbol] += row.bars
    by_symbol = {row["symbol"]: row for row in got["per_symbol"]}
    for sym in DEMO_SYMBOLS:
        row = by_symbol[sym]
        assert row["bars"] == received[sym] and row["expected"] == expected
        assert row["quality"] == round(100.0 * received[sym] / expected, 2)
    assert by_symbol["AAPL"]["quality"] == 100.0 and by_symbol["NVDA"]["quality"] < 99.0


def test_sessions_without_data_are_counted_and_named(tmp_path: Path) -> None:
    csv = tmp_path / "two.csv"
    csv.write_text(
        "symbol,timestamp,open,high,low,close,volume\n"
        "abc,2024-11-25T09:30:00-05:00,10,11,9,10.5,100\n"
        "abc,2024-11-27T08:00:00-05:00,10,11,9,10.5,100\n"  # extended: counted apart
        "abc,2024-11-27T09:30:00-05:00,10,11,9,10.5,100\n"
    )
    store = tmp_path / "s.duckdb"
    runner = CliRunner()
    done = runner.invoke(app, ["import", "bars", str(csv), "--store", str(store), "--extended"])
    assert done.exit_code == 0, done.output
    code, out, err = info("--store", str(store), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["created_by"] == "user"
    assert (got["sessions_covered"], got["calendar_sessions"]) == (2, 3)
    assert got["missing_sessions"] == ["2024-11-26"]
    (row,) = got["per_symbol"]
    assert row["symbol"] == "ABC" and row["bars"] == 2 and row["extended_bars"] == 1
    assert row["expected"] == 3 * 390 and row["sessions"] == 2
    code, text, err = info("--store", str(store))
    assert code == 0, err
    assert "ABC" in text and "2024-11-26" in text and "schema 2" in text


def test_info_opens_read_only_and_missing_store_is_one_line(tmp_path: Path) -> None:
    code, _, err = info("--store", str(tmp_path / "nope.duckdb"))
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "nope.duckdb").exists()


def test_empty_store_reports_nothing_stored(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    DuckDBStore(path).close()
    code, out, err = info("--store", str(path), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["symbols"] == [] and got["first_session"] is None and got["per_symbol"] == []
    code, text, _ = info("--store", str(path))
    assert code == 0 and "no bars" in text


def test_a_legacy_store_is_read_as_it_is_and_left_unchanged(tmp_path: Path) -> None:
    import duckdb

    from tests.store_support import digest

    legacy = tmp_path / "legacy.duckdb"  # from before the meta table: bars_1m only
    con = duckdb.connect(str(legacy))
    con.execute(
        "CREATE TABLE bars_1m (symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, "
        "open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL, "
        "volume BIGINT NOT NULL, regular BOOLEAN NOT NULL DEFAULT TRUE)"
    )
    con.execute("INSERT INTO bars_1m VALUES ('OLD', '2024-11-25 14:30:00+00', 1, 1, 1, 1, 5, true)")
    con.close()
    before = digest(legacy)
    code, out, err = info("--store", str(legacy), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["schema_version"], got["created_by"]) == (0, "legacy")
    assert got["rows"] == {"bars": 1, "quotes": 0, "ticks": 0}
    assert got["per_symbol"][0]["quality"] == round(100 / 390, 2)
    assert digest(legacy) == before
