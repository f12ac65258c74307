"""``sessionflow store copy`` between DuckDB and PostgreSQL, both ways, checked by checksums.

And the point of copying: a report from PostgreSQL equals the one from DuckDB for the
same imported data.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from contextlib import closing
from datetime import date
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.corporate_actions import Action, MapEntry
from sessionflow.models import Quote, Tick, from_us
from sessionflow.store import BarBatch, open_store
from sessionflow.stream_coordinator.live.store import quote_batch
from tests.store_support import argv, env

runner = CliRunner()
T0 = 1_732_545_000_000_000  # 2024-11-25 14:30Z, a demo session
T0_DAY = date(2024, 11, 25)
TABLES = ["bars_1m", "quotes", "ticks", "corporate_actions", "symbol_map", "fetch_log"]
FETCHED = {("AAPL", date(2024, 11, 25)), ("SPY", date(2024, 11, 25))}


def cli(*args: str | Path) -> tuple[int, str, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def full_store(demo_store_path: Path, path: Path) -> Path:
    """The demo's bars plus quotes, ticks, actions and a rename: every table has rows."""
    shutil.copy(demo_store_path, path)
    store = open_store(path)
    try:
        quotes = [
            Quote(s, from_us(T0 + i * 60_000_000), 1.0 + i, 1.5 + i, 0.5 + i, 1.25 + i, 100 + i,
                  1.1 + i, 1.6 + i, 0.6 + i, 1.35 + i, 200, i % 2 == 0)
            for s in ("AAPL", "SPY") for i in range(30)
        ]  # fmt: skip
        store.upsert_quotes(quote_batch(quotes))
        ticks = [Tick("AAPL", from_us(T0 + i * 1_000_000), 100.0 + i / 7, 10 + i, i % 3)
                 for i in range(50)]  # fmt: skip
        store.upsert_ticks(ticks)
        store.write_actions(
            [Action("AAPL", date(2020, 8, 31), 0.25, 0.0, 1.0),
             Action("MSFT", date(2024, 11, 21), 1.0, 0.83, 0.998)],
            [MapEntry("META", date(2022, 6, 8), "FB")],
        )  # fmt: skip
        store.record_fetched("alpaca:iex:bars", [(s, d, 390) for s, d in sorted(FETCHED)])
        store.record_fetched("alpaca:iex:quotes", [("AAPL", date(2024, 11, 25), 30)])
    finally:
        store.close()
    return path


def copy(*args: str | Path) -> dict[str, dict[str, object]]:
    code, out, err = cli("store", "copy", *args, "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["equal"] is True
    return {t["table"]: t for t in got["tables"]}


def test_copy_duckdb_to_postgresql_and_back_with_equal_checksums(
    demo_store_path: Path, tmp_path: Path, pg_url: str
) -> None:
    src = full_store(demo_store_path, tmp_path / "src.duckdb")
    there = copy(src, pg_url)
    assert list(there) == TABLES
    assert all(int(str(t["rows"])) > 0 for t in there.values())
    assert there["bars_1m"]["rows"] == open_store(src, read_only=True).count_bars()
    back = copy(pg_url, tmp_path / "back.duckdb")
    for table in TABLES:  # the same rows on three stores: one checksum
        assert back[table]["source_checksum"] == there[table]["source_checksum"]
        assert back[table]["destination_checksum"] == there[table]["source_checksum"]
    assert there["fetch_log"]["rows"] == 3
    with closing(open_store(tmp_path / "back.duckdb", read_only=True)) as copied:
        # a copied store's download asks for nothing its source had completed
        assert copied.fetched_sessions("alpaca:iex:bars", ["AAPL", "SPY", "MSFT"]) == FETCHED
        assert copied.fetched_sessions("alpaca:iex:quotes", ["AAPL"]) == {("AAPL", T0_DAY)}
    code, _, err = cli("store", "copy", src, pg_url)
    assert code == 2 and "is not empty" in err and "--on-conflict" in err
    assert len(err.strip().splitlines()) == 1


def test_on_conflict_replace_and_keep_into_a_non_empty_destination(
    demo_store_path: Path, tmp_path: Path, pg_url: str
) -> None:
    src = full_store(demo_store_path, tmp_path / "src.duckdb")
    copy(src, pg_url)
    store = open_store(src)
    changed = BarBatch.from_columns(["AAPL"], [T0], [1.0], [2.0], [0.5], [1.5], [7], [True])
    store.upsert_bars(changed)
    store.close()
    code, out, err = cli("store", "copy", src, pg_url, "--on-conflict", "keep", "--json")
    assert code == 0, err  # the destination's bar stays: the bars differ, reported
    kept = {t["table"]: t for t in json.loads(out)["tables"]}
    assert kept["bars_1m"]["equal"] is False and kept["quotes"]["equal"] is True
    replaced = copy(src, pg_url, "--on-conflict", "replace")
    assert replaced["bars_1m"]["source_checksum"] == replaced["bars_1m"]["destination_checksum"]
    pg = open_store(pg_url, read_only=True)
    try:
        assert pg.find_bars([("AAPL", T0)]).close.tolist() == [1.5]
    finally:
        pg.close()


def test_a_report_from_postgresql_equals_the_one_from_duckdb(
    demo_store_path: Path, tmp_path: Path, pg_url: str
) -> None:
    csv = tmp_path / "bars.csv"
    code, out, err = cli(
        "export", "bars", "--start", "2024-11-25", "--end", "2024-11-29", "--output", csv,
        "--store", demo_store_path,
    )  # fmt: skip
    assert code == 0, err
    reports = []
    for store in (tmp_path / "imported.duckdb", pg_url):
        code, out, err = cli("import", "bars", csv, "--store", store, "--json")
        assert code == 0, err
        code, out, err = cli(
            "report", "--symbols", "AAPL,NVDA,QQQ,SPY", "--start", "2024-11-25",
            "--end", "2024-11-29", "--store", store, "--json",
        )  # fmt: skip
        assert code == 0, err
        reports.append(json.loads(out))
    assert reports[0] == reports[1]
    assert any(row["gaps"] for row in reports[0])  # NVDA and QQQ miss minutes: gaps compared
    assert min(row["quality"] for row in reports[0]) < 100.0


def test_actions_and_adjusted_exports_agree_between_backends(
    demo_store_path: Path, tmp_path: Path, pg_url: str
) -> None:
    csv = tmp_path / "bars.csv"
    code, _, err = cli("export", "bars", "--start", "2024-11-25", "--end", "2024-11-29",
                       "--output", csv, "--store", demo_store_path)  # fmt: skip
    assert code == 0, err
    actions = tmp_path / "actions.csv"
    actions.write_text("symbol,ex_date,split,dividend\nAAPL,2024-11-27,2,\nMSFT,2024-11-27,,0.8\n")
    files = []
    for store in (tmp_path / "imported.duckdb", pg_url):
        assert cli("import", "bars", csv, "--store", store)[0] == 0
        code, out, err = cli("import", "actions", actions, "--store", store, "--json")
        assert code == 0, err
        assert [r["new"] for r in json.loads(out)] == [2]
        out_file = tmp_path / f"adjusted{len(files)}.csv"
        code, _, err = cli("export", "bars", "--start", "2024-11-25", "--end", "2024-11-29",
                           "--as-of", "2024-11-29", "--adjustment", "split_dividend",
                           "--output", out_file, "--store", store)  # fmt: skip
        assert code == 0, err
        files.append(out_file.read_text())
    assert files[0] == files[1] and files[0] != csv.read_text()  # adjusted, identically


def test_one_duckdb_file_under_two_spellings_is_the_same_store(
    demo_store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, store)
    (tmp_path / "link.duckdb").symlink_to(store)
    monkeypatch.chdir(tmp_path)
    for other in ("s.duckdb", "./link.duckdb"):
        code, _, err = cli("store", "copy", store, other, "--on-conflict", "replace")
        assert code == 2 and err.strip().splitlines() == [
            f"error: source and destination are the same store ({store})"
        ], err


def test_a_write_committed_while_a_copy_starts_makes_it_refuse_the_destination(
    demo_store_path: Path, pg_url: str
) -> None:
    """The emptiness check holds inside the copy's transaction, not only before it.

    Another writer's transaction is open (uncommitted, so the copy's first look sees an
    empty store); it commits once the copy waits for it. Then the copy must refuse.
    """
    open_store(pg_url).close()  # the schema
    with psycopg.connect(pg_url) as other:
        other.execute(
            "INSERT INTO bars_1m VALUES ('ZZZ', '2024-11-25 14:30+00', 1, 1, 1, 1, 1, true)"
        )
        proc = subprocess.Popen(
            argv("store", "copy", str(demo_store_path), pg_url),
            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        with psycopg.connect(pg_url, autocommit=True) as watch:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                ).fetchone()
                if waiting and waiting[0]:
                    break
                time.sleep(0.05)  # polling the server's view of the copy, bounded above
        other.commit()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, err)
    assert "is not empty (1 bars_1m); nothing was copied" in err
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT count(*) FROM bars_1m").fetchone() == (1,)


def test_ctrl_c_during_a_copy_says_nothing_was_copied(demo_store_path: Path, pg_url: str) -> None:
    proc = subprocess.Popen(
        argv("store", "copy", str(demo_store_path), pg_url),
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("copying bars_1m"):
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted: nothing was copied (a copy is one destination transaction)"
    ]
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT count(*) FROM bars_1m").fetchone() == (0,)


def test_a_ctrl_c_duckdb_caught_first_still_counts_as_an_interrupt() -> None:
    """SIGINT during a DuckDB query ends it with DuckDB's own error, not KeyboardInterrupt
    (seen in CI: `RuntimeError: Query interrupted` from the copy's source read)."""
    import duckdb

    from sessionflow.store.errors import is_interrupt

    assert is_interrupt(KeyboardInterrupt())
    assert is_interrupt(duckdb.InterruptException("INTERRUPT Error: Interrupted!"))
    assert is_interrupt(RuntimeError("Query interrupted"))
    assert not is_interrupt(RuntimeError("something else"))
    assert not is_interrupt(ValueError("Query interrupted"))
