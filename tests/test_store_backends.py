"""The store's core semantics, the same on both backends: a DuckDB file and a PostgreSQL server.

Every test runs twice (``store_backend``: duckdb, postgresql), through ``open_store``
and the CLI as a user names a store (``--store PATH`` or ``--store postgresql://...``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.corporate_actions import Action, MapEntry
from sessionflow.importer import import_bars
from sessionflow.models import Quote, Tick, from_us
from sessionflow.store import BarBatch, is_url, open_store
from sessionflow.store.base import StoreWriteError
from sessionflow.store.errors import StoreReadOnly, StoreTooNew
from sessionflow.store.schema import SCHEMA_VERSION
from sessionflow.stream_coordinator.live.store import quote_batch
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import cli_result, error_line

runner = CliRunner()
T0 = 1_732_113_000_000_000  # 2024-11-20 14:30Z
M = 60_000_000
NY = ZoneInfo("America/New_York")
HEADER = "timestamp,open,high,low,close,volume\n"
A = "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n"
B = "2024-11-29T09:31:00-05:00,10.5,11.5,10,11,250\n"


def batch(symbols: list[str], ts: list[int], close: float = 1.0) -> BarBatch:
    n = len(ts)
    return BarBatch.from_columns(
        symbols, ts, [close] * n, [close + 1] * n, [close - 0.5] * n, [close] * n,
        np.arange(n) + 1, [True] * n,
    )  # fmt: skip


def cli(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def sql(name: str, statement: str) -> None:
    """Change a store behind sessionflow's back (to fake an old or a newer schema)."""
    if is_url(name):
        with psycopg.connect(name, autocommit=True) as con:
            con.execute(statement)
    else:
        duck = duckdb.connect(name)
        duck.execute(statement)
        duck.close()


def test_upsert_twice_never_duplicates_and_replaces_values(store_backend: str) -> None:
    store = open_store(store_backend)
    try:
        store.upsert_bars(batch(["A", "A", "B"], [T0, T0 + M, T0]))
        store.upsert_bars(batch(["A", "A", "B"], [T0, T0 + M, T0], close=2.0))
        assert store.count_bars() == 3
        day = datetime(2024, 11, 20, tzinfo=UTC), datetime(2024, 11, 21, tzinfo=UTC)
        loaded = store.load_bars(["A", "B"], *day)
        assert loaded.close.tolist() == [2.0, 2.0, 2.0]
        assert list(loaded.symbol) == ["A", "B", "A"]  # ordered by (ts, symbol)
        rows, _ = store.load_bar_rows(["B", "A", "Z"], *day)
        assert rows.tolist() == [0, 1, 0]  # rows in sorted(set(symbols))
        assert store.symbols() == ["A", "B"]
    finally:
        store.close()


def test_bars_load_ordered_by_time_then_symbol_whatever_the_write_order(
    store_backend: str,
) -> None:
    """Written late-first and symbol-descending, in three writes: loads come back in
    (ts, symbol) order with their rows, as the replay's merge needs them."""
    store = open_store(store_backend)
    try:
        names = ["D", "C", "B", "A"]
        for k in (2, 0, 1):
            store.upsert_bars(batch(names, [T0 + k * M] * 4, close=10.0 + k))
        day = datetime(2024, 11, 20, tzinfo=UTC), datetime(2024, 11, 21, tzinfo=UTC)
        rows, loaded = store.load_bar_rows(["A", "B", "C", "D"], *day)
        assert loaded.ts_us.tolist() == [T0 + k * M for k in range(3) for _ in range(4)]
        assert list(loaded.symbol) == ["A", "B", "C", "D"] * 3
        assert rows.tolist() == [0, 1, 2, 3] * 3
        assert loaded.close.tolist() == [10.0 + k for k in range(3) for _ in range(4)]
        assert loaded.volume.tolist() == [4, 3, 2, 1] * 3  # each bar's own values moved with it
    finally:
        store.close()


def test_a_failed_write_leaves_the_store_unchanged(store_backend: str) -> None:
    store = open_store(store_backend)
    try:
        store.upsert_bars(batch(["A"], [T0]))
        bad = batch(["A", "A"], [T0 + M, T0 + 2 * M])
        bad.symbol[1] = None
        with pytest.raises((StoreWriteError, duckdb.Error), match="NOT NULL"):
            store.upsert_bars(bad)
        assert store.count_bars() == 1
    finally:
        store.close()


def test_timezone_aware_round_trip_of_bars_quotes_and_ticks(store_backend: str) -> None:
    store = open_store(store_backend)
    try:
        store.upsert_bars(batch(["A", "A"], [T0, T0 + M]))
        t = from_us(T0)
        quote = Quote("A", t, 1.0, 1.5, 0.5, 1.25, 100, 1.1, 1.6, 0.6, 1.35, 200, True)
        store.upsert_quotes(quote_batch([quote]))
        ticks = [Tick("A", t, 10.0, 5, 1), Tick("A", t, 10.1, 3, 2)]
        store.upsert_ticks(ticks)
        store.upsert_ticks([Tick("A", t, 10.2, 4, 2)])  # the same print again, corrected
        # the window given in New York time selects the same UTC instants
        start = datetime(2024, 11, 20, 9, 30, tzinfo=NY)
        end = datetime(2024, 11, 20, 9, 31, tzinfo=NY)
        bars = store.load_bars(["A"], start, end)
        assert bars.ts_us.tolist() == [T0]
        got = next(bars.iter_bars()).ts
        assert got == datetime(2024, 11, 20, 14, 30, tzinfo=UTC) and got.utcoffset() is not None
        (q,) = store.load_quotes(["A"], start, end).iter_quotes()
        assert q == quote
        assert store.load_ticks(["A"], start, end) == [ticks[0], Tick("A", t, 10.2, 4, 2)]
        assert store.find_bars([("A", T0 + M), ("A", T0 + 2 * M)]).ts_us.tolist() == [T0 + M]
    finally:
        store.close()


def test_data_version_changes_with_every_committed_write(store_backend: str) -> None:
    store = open_store(store_backend)
    try:
        v0 = store.data_version()
        store.upsert_bars(batch(["A"], [T0]))
        v1 = store.data_version()
        store.upsert_ticks([Tick("A", from_us(T0), 1.0, 1, 1)])
        v2 = store.data_version()
        assert v0 != v1 != v2 and store.data_version() == v2  # reading does not change it
        if is_url(store_backend):  # a server store: another process's write is seen too
            other = open_store(store_backend)
            other.upsert_bars(batch(["B"], [T0]))
            other.close()
            assert store.data_version() != v2
    finally:
        store.close()


def test_import_counts_and_conflicts_through_the_cli(store_backend: str, tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text(HEADER + A + B)
    two = tmp_path / "two.csv"
    two.write_text(HEADER + A.replace(",10.5,100", ",10.75,100") + B)
    store = store_backend
    code, out = cli("import", "bars", one, "--symbol", "AAPL", "--store", store, "--json")
    assert code == 0, out
    assert [(r["new"], r["unchanged"]) for r in json.loads(out)] == [(2, 0)]
    res = cli_result("import", "bars", one, two, "--symbol", "AAPL", "--store", store)
    assert res.exit_code == 1
    flat = error_line(res, "error:")
    assert "1 row(s) conflict" in flat and "AAPL 2024-11-29T14:30:00+00:00" in flat
    code, out = cli(
        "import", "bars", one, two, "--symbol", "AAPL", "--store", store,
        "--on-conflict", "replace", "--json",
    )  # fmt: skip
    assert code == 0, out
    r1, r2 = json.loads(out)
    assert (r1["new"], r1["unchanged"], r1["replaced"]) == (0, 2, 0)
    assert (r2["new"], r2["unchanged"], r2["replaced"]) == (0, 1, 1)
    three = tmp_path / "three.csv"
    three.write_text(HEADER + A.replace(",10.5,100", ",10.9,100") + B.replace("09:31", "09:32"))
    code, out = cli(
        "import", "bars", three, "--symbol", "AAPL", "--store", store,
        "--on-conflict", "keep", "--json",
    )  # fmt: skip
    assert code == 0, out
    (r,) = json.loads(out)
    assert (r["new"], r["kept"], r["replaced"]) == (1, 1, 0)
    db = open_store(store, read_only=True)
    try:
        got = db.load_bars(["AAPL"], datetime(2024, 11, 29, tzinfo=UTC), datetime(2024, 11, 30,
                           tzinfo=UTC))  # fmt: skip
        assert got.close.tolist() == [10.75, 11.0, 11.0] and db.count_bars() == 3
    finally:
        db.close()


def test_a_bad_conflict_policy_is_refused_with_one_message_everywhere(
    store_backend: str, tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    """The CLI, the Python import API and the store's own merge give the same one line."""
    expected = "--on-conflict 'bogus' is not a conflict policy: use one of error, replace, keep"
    csv = tmp_path / "a.csv"
    csv.write_text(HEADER + A)
    res = cli_result("import", "bars", csv, "--symbol", "AAPL", "--store", store_backend,
                     "--on-conflict", "bogus")  # fmt: skip
    assert (res.exit_code, res.stdout, res.stderr) == (2, "", f"error: {expected}\n")
    res = cli_result("import", "lean", tmp_path, "--store", store_backend, "--on-conflict", "bogus")
    assert (res.exit_code, res.stdout, res.stderr) == (2, "", f"error: {expected}\n")
    store = open_store(store_backend)
    try:
        with pytest.raises(ValueError) as api:
            import_bars(store, csv, calendar, "AAPL", on_conflict="bogus")
        stage = store.stage_import()
        try:
            with pytest.raises(ValueError) as merge:
                stage.merge("bogus")
        finally:
            stage.close()
        assert str(api.value) == str(merge.value) == expected
        assert store.count_bars() == 0
    finally:
        store.close()


def test_table_count_and_symbols_are_public_reads_on_either_backend(
    store_backend: str, tmp_path: Path
) -> None:
    """What ``store info`` and ``store copy`` read, through the store's own public methods:
    rows and symbols per table, none for a table an older store lacks (read as it is)."""
    store = open_store(store_backend)
    try:
        store.upsert_bars(batch(["B", "A", "B"], [T0, T0, T0 + M]))
        store.write_actions([], [MapEntry("META", date(2021, 10, 27), "FB")])
    finally:
        store.close()
    sql(store_backend, "DROP TABLE ticks")
    reader = open_store(store_backend, read_only=True)
    try:
        assert reader.table_count("bars_1m") == 3 and reader.table_count("ticks") == 0
        assert reader.table_symbols("bars_1m") == ["A", "B"]
        assert reader.table_symbols("symbol_map") == ["META"]
        assert reader.table_symbols("ticks") == [] and reader.table_symbols("quotes") == []
        assert reader.table_rows() == {"bars": 3, "quotes": 0, "ticks": 0}
    finally:
        reader.close()


def test_schema_version_newer_refused_and_readers_never_write(store_backend: str) -> None:
    open_store(store_backend).close()
    reader = open_store(store_backend, read_only=True)
    try:
        assert reader.meta["schema_version"] == str(SCHEMA_VERSION)
        with pytest.raises(StoreReadOnly):
            reader.upsert_bars(batch(["A"], [T0]))
    finally:
        reader.close()
    sql(store_backend, "UPDATE sessionflow_meta SET value = '99' WHERE key = 'schema_version'")
    for read_only in (True, False):
        with pytest.raises(StoreTooNew, match="schema 99"):
            open_store(store_backend, read_only=read_only)


def test_an_older_schema_is_migrated_by_the_first_writer(store_backend: str) -> None:
    open_store(store_backend).close()
    sql(store_backend, "DROP TABLE symbol_map")
    sql(store_backend, "UPDATE sessionflow_meta SET value = '1' WHERE key = 'schema_version'")
    reader = open_store(store_backend, read_only=True)
    assert reader.meta["schema_version"] == "1"  # read as it is
    reader.close()
    writer = open_store(store_backend)
    try:
        assert writer.meta["schema_version"] == str(SCHEMA_VERSION)
        writer.write_actions([], [MapEntry("META", date(2021, 10, 27), "FB")])
        assert writer.load_symbol_map(["META"]) == [MapEntry("META", date(2021, 10, 27), "FB")]
    finally:
        writer.close()


def test_corporate_actions_and_renames_with_counts(store_backend: str) -> None:
    store = open_store(store_backend)
    try:
        split = Action("AAPL", date(2020, 8, 31), 0.25, 0.0, 1.0)
        div = Action("AAPL", date(2024, 11, 8), 1.0, 0.25, 0.9989)
        rename = MapEntry("META", date(2022, 6, 8), "FB")
        counts = store.write_actions([split, div], [rename])
        assert counts[("actions", "AAPL")].new == 2 and counts[("map", "META")].new == 1
        counts = store.write_actions([split, Action("AAPL", date(2024, 11, 8), 1.0, 0.3, 0.9)], [])
        assert (counts[("actions", "AAPL")].unchanged, counts[("actions", "AAPL")].replaced) == (
            1,
            1,
        )
        assert [a.dividend for a in store.load_actions(["AAPL"])] == [0.0, 0.3]
        assert store.load_symbol_map(["META"]) == [rename]
    finally:
        store.close()


def test_store_info_reads_either_backend(store_backend: str, tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text(HEADER + A + B)
    assert cli("import", "bars", csv, "--symbol", "AAPL", "--store", store_backend)[0] == 0
    code, out = cli("store", "info", "--store", store_backend, "--json")
    assert code == 0, out
    got = json.loads(out)
    assert got["rows"] == {"bars": 2, "quotes": 0, "ticks": 0}
    assert got["symbols"] == ["AAPL"] and got["user_data"] is True
    assert got["schema_version"] == SCHEMA_VERSION
