"""Corporate actions: importing LEAN factor/map files and a plain CSV, the store migration."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.store import DuckDBStore
from tests.helpers import shared_data


@pytest.fixture(scope="module")
def factors_dir() -> Path:
    return shared_data("lean-factors")


def _invoke(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_import_factors_counts_and_split(tmp_path: Path, factors_dir: Path) -> None:
    db = tmp_path / "s.duckdb"
    code, out, err = _invoke("import", "factors", str(factors_dir), "--store", str(db), "--json")
    assert code == 0, err
    first = {Path(r["file"]).parent.name + "/" + Path(r["file"]).name: r for r in json.loads(out)}
    assert first["factor_files/aapl.csv"]["new"] > 0 and first["map_files/twx.csv"]["new"] == 3
    code, out, err = _invoke("import", "factors", str(factors_dir), "--store", str(db), "--json")
    again = json.loads(out)
    assert code == 0 and all(r["new"] == 0 and r["unchanged"] == r["imported"] for r in again)
    store = DuckDBStore(db, read_only=True)
    try:
        aapl = {a.ex_date: a for a in store.load_actions(["AAPL"])}
        split = aapl[date(2014, 6, 9)]
        assert split.split == pytest.approx(7.0) and split.dividend_factor == 1.0
        # the LEAN row 20140507 -> 20140606 is the dividend with ex-date 2014-05-08
        div = aapl[date(2014, 5, 8)]
        assert div.split == 1.0 and div.dividend_factor == pytest.approx(0.8961764 / 0.9011818)
        twx = store.load_symbol_map(["TWX"])
        assert [(e.until, e.ticker) for e in twx] == [
            (date(1998, 1, 2), "AOL"), (date(2003, 10, 15), "AOL"), (date(2018, 6, 15), "TWX")
        ]  # fmt: skip
    finally:
        store.close()


def _bars_csv(tmp_path: Path) -> Path:
    """XYZ closes 40 on 03-04 and 25 on 03-05 (after its 2:1 split): a dividend going ex
    on 03-06 is a fraction of 03-05's close, so a factor from any other day's differs."""
    path = tmp_path / "bars.csv"
    path.write_text(
        "symbol,ts,open,high,low,close,volume\n"
        "XYZ,2024-03-04T20:59:00Z,50,50,40,40,10\n"
        "XYZ,2024-03-05T14:30:00Z,21,22,20,20,10\n"
        "XYZ,2024-03-05T20:59:00Z,24,26,24,25,10\n"
    )
    return path


def test_import_actions_csv_rejects_with_lines_and_reasons(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    code, _, err = _invoke("import", "bars", str(_bars_csv(tmp_path)), "--store", str(db))
    assert code == 0, err
    src = tmp_path / "actions.csv"
    src.write_text(
        "symbol,ex_date,split,dividend\n"
        "XYZ,2024-03-05,2,\n"  # 2: good split
        "XYZ,2024-03-06,,1.0\n"  # 3: good dividend: factor 1 - 1/25 from the 03-05 close
        "XYZ,2024-03-05,3,\n"  # 4: duplicate
        "XYZ,2024-03-09,2,\n"  # 5: Saturday
        "XYZ,not-a-date,2,\n"  # 6
        "XYZ,2024-03-07,-1,\n"  # 7
        "NOPE,2024-03-07,,0.5\n"  # 8: no stored close
        "XYZ,2024-03-08,,x\n"  # 9
    )
    code, out, err = _invoke("import", "actions", str(src), "--store", str(db), "--json")
    assert code == 0, err
    (report,) = json.loads(out)
    assert report["new"] == 2 and report["committed"]
    got = {(r["line"], r["reason"]) for r in report["rejections"]}
    assert got == {
        (4, "duplicate"), (5, "outside_session"), (6, "unparsable_date"), (7, "bad_factor"),
        (8, "no_reference_close"), (9, "bad_number"),
    }  # fmt: skip
    store = DuckDBStore(db, read_only=True)
    try:
        acts = store.load_actions(["XYZ"])
    finally:
        store.close()
    assert [(a.ex_date, a.split, a.dividend_factor) for a in acts] == [
        (date(2024, 3, 5), 2.0, 1.0), (date(2024, 3, 6), 1.0, 1 - 1 / 25)
    ]  # fmt: skip


def test_actions_file_with_no_good_row_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    src = tmp_path / "actions.csv"
    src.write_text("XYZ,2024-03-05,2\nXYZ,bad,2\n")
    ok = tmp_path / "ok.csv"
    ok.write_text("XYZ,2024-03-05,2\n")
    assert _invoke("import", "actions", str(ok), "--store", str(db))[0] == 0
    src.write_text("XYZ,bad,2\n")
    code, _, err = _invoke("import", "actions", str(src), "--store", str(db))
    assert code == 1 and "no importable row" in err and "\n" not in err.strip()
    code, _, err = _invoke("import", "actions", str(tmp_path / "missing.csv"), "--store", str(db))
    assert code == 1 and "missing.csv" in err and "Traceback" not in err


def test_schema_1_store_migrates_on_first_write_and_reads_as_is(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    DuckDBStore(db).close()
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE corporate_actions; DROP TABLE symbol_map")
    con.execute("UPDATE sessionflow_meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    reader = DuckDBStore(db, read_only=True)
    try:
        assert reader.meta["schema_version"] == "1" and reader.load_actions(["XYZ"]) == []
    finally:
        reader.close()
    ok = tmp_path / "ok.csv"
    ok.write_text("XYZ,2024-03-05,2\n")
    assert _invoke("import", "actions", str(ok), "--store", str(db))[0] == 0
    store = DuckDBStore(db, read_only=True)
    try:
        assert store.meta["schema_version"] == "2" and len(store.load_actions(["XYZ"])) == 1
    finally:
        store.close()


def test_split_ratio_from_rounded_factors_is_exact() -> None:
    from sessionflow.corporate_actions.lean_files import snap_ratio

    assert snap_ratio(0.25 / 0.0357143) == 7.0
    assert snap_ratio(0.0357143 / 0.25) == pytest.approx(1 / 7, abs=0)
    assert snap_ratio(1.0374) == 1.0374  # no simple fraction near: kept as given


def test_adjust_day_no_look_ahead_and_reverse_split() -> None:
    import numpy as np

    from sessionflow.corporate_actions import Action, adjust_day
    from sessionflow.store import BarBatch

    batch = BarBatch(
        np.array(["A", "B"], dtype=object), np.array([0, 0], dtype=np.int64),
        np.array([10.0, 10.0]), np.array([10.0, 10.0]), np.array([10.0, 10.0]),
        np.array([10.0, 10.0]), np.array([100, 100], dtype=np.int64),
    )  # fmt: skip
    acts = [Action("A", date(2024, 3, 6), split=0.5), Action("B", date(2024, 3, 5), 1.0, 1.0, 0.9)]
    day = date(2024, 3, 4)
    before = adjust_day(batch, day, date(2024, 3, 5), acts, "split_dividend")
    assert before.close.tolist() == [10.0, 9.0] and before.volume.tolist() == [100, 100]
    after = adjust_day(batch, day, date(2024, 3, 6), acts, "split")
    assert after.close.tolist() == [20.0, 10.0] and after.volume.tolist() == [50, 100]
    assert adjust_day(batch, date(2024, 3, 6), date(2024, 3, 6), acts, "split") is batch


def test_history_and_export_follow_renames(tmp_path: Path) -> None:
    from sessionflow import Event, SessionStartEvent, Settings, build_system

    db = tmp_path / "s.duckdb"
    bars = tmp_path / "bars.csv"
    bars.write_text(
        "symbol,ts,open,high,low,close,volume\n"
        "OLDCO,2024-03-04T20:58:00Z,10,11,9,10.5,100\n"
        "NEWCO,2024-03-05T20:58:00Z,20,21,19,20.5,200\n"
    )
    assert _invoke("import", "bars", str(bars), "--store", str(db))[0] == 0
    (tmp_path / "f" / "map_files").mkdir(parents=True)
    (tmp_path / "f" / "map_files" / "newco.csv").write_text(
        "20000103,oldco,N\n20240304,oldco,N\n20501231,newco,N\n"
    )
    code, _, err = _invoke("import", "factors", str(tmp_path / "f"), "--store", str(db))
    assert code == 0, err
    settings = Settings(
        store_path=db, symbols=["NEWCO"], start=date(2024, 3, 5), end=date(2024, 3, 5),
        trailing_days=1, historical_intervals=[1],
    )  # fmt: skip
    system = build_system(settings)
    seen: list[tuple[str, float]] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, SessionStartEvent):
            hist = system.data_manager.history("NEWCO", 1, date(2024, 3, 4))
            seen.extend((b.symbol, b.close) for b in hist)

    system.on_event(on_event)
    try:
        system.run()
    finally:
        system.store.close()
    assert seen == [("NEWCO", 10.5)]
    out = tmp_path / "x.csv"
    args = ["--start", "2024-03-04", "--end", "2024-03-05", "--symbols", "NEWCO", "-o", str(out)]
    code, _, err = _invoke("export", "bars", *args, "--store", str(db))
    assert code == 0, err
    rows = out.read_text().splitlines()[1:]
    assert [r.split(",")[0] + "," + r.split(",")[5] for r in rows] == ["NEWCO,10.5", "NEWCO,20.5"]
