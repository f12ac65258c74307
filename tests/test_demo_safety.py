"""Issue 9 item 1: the demo never writes into a store holding data it did not create."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from sessionflow.store import DuckDBStore
from tests.store_support import digest, lines, one_line_error, run, write_csv

DEFAULT = Path("data/sessionflow.duckdb")
DEMO = Path("data/demo.duckdb")
CLOSES = [1.0, 1.0, 1.0, 1.0, 1.0]


def _aapl_closes(store: Path) -> list[float]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute("SELECT close FROM bars_1m WHERE symbol = 'AAPL' ORDER BY ts").fetchall()
    finally:
        con.close()
    return [float(r[0]) for r in rows]


def test_demo_leaves_imported_bars_unchanged_and_still_runs(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "aapl.csv", CLOSES)
    imported = run("import", "bars", str(csv), "--symbol", "AAPL", "--json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    store = tmp_path / DEFAULT
    before = digest(store)

    demo = run("demo", "--json", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert digest(store) == before  # byte for byte: not even opened for writing
    assert _aapl_closes(store) == CLOSES
    note = [line for line in lines(demo.stderr) if line.startswith("note:")]
    assert len(note) == 1 and str(DEMO) in note[0], demo.stderr
    sessions = json.loads(demo.stdout)["sessions"]
    assert len(sessions) == 11 and sessions[0]["rows"][0]["bars"] > 0

    own = run("backtest", "--symbols", "AAPL", "--start", "2024-11-25", "--end", "2024-11-25",
              "--json", cwd=tmp_path)  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["sessions"][0]["rows"][0]["bars"] == len(CLOSES)


def test_demo_refuses_a_named_store_holding_user_data(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "aapl.csv", CLOSES)
    store = tmp_path / "mine.duckdb"
    assert run("import", "bars", str(csv), "--symbol", "AAPL", "--store", str(store),
               cwd=tmp_path).returncode == 0  # fmt: skip
    before = digest(store)
    res = run("demo", "--store", str(store), cwd=tmp_path)
    one_line_error(res, str(store), "holds data the demo did not create")
    assert digest(store) == before
    assert not (tmp_path / DEMO).exists()


def test_newcomer_flow_demo_then_backtest_and_a_second_demo_only_reads(tmp_path: Path) -> None:
    first = run("demo", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert not [line for line in lines(first.stderr) if line.startswith("note:")]
    store = tmp_path / DEFAULT
    back = run("backtest", "--symbols", "AAPL,MSFT", "--start", "2024-11-25", "--end",
               "2024-11-29", "--json", cwd=tmp_path)  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert [s["session"] for s in json.loads(back.stdout)["sessions"]] == [
        "2024-11-25", "2024-11-26", "2024-11-27", "2024-11-29",
    ]  # fmt: skip
    before = digest(store)
    reader = duckdb.connect(str(store), read_only=True)  # a writer could not open it now
    try:
        again = run("demo", "--json", cwd=tmp_path)
    finally:
        reader.close()
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["sessions"] == json.loads(first.stdout)["sessions"]
    assert digest(store) == before


def test_import_into_the_demo_store_makes_it_user_data(tmp_path: Path) -> None:
    assert run("demo", "--json", cwd=tmp_path).returncode == 0
    csv = write_csv(tmp_path / "x.csv", CLOSES)
    assert run("import", "bars", str(csv), "--symbol", "MINE", cwd=tmp_path).returncode == 0
    store = DuckDBStore(tmp_path / DEFAULT, read_only=True)
    assert store.meta["created_by"] == "demo" and store.meta["user_data"] == "true"
    store.close()
    before = digest(tmp_path / DEFAULT)
    res = run("demo", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "note:" in res.stderr and (tmp_path / DEMO).exists()
    assert digest(tmp_path / DEFAULT) == before
