"""Corporate actions: importing LEAN factor/map files and a plain CSV, the store migration."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
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


def _store_with_actions(tmp_path: Path, bars: str, actions: str) -> Path:
    db = tmp_path / "s.duckdb"
    (tmp_path / "bars.csv").write_text("symbol,ts,open,high,low,close,volume\n" + bars)
    (tmp_path / "actions.csv").write_text(actions)
    code, _, err = _invoke("import", "bars", str(tmp_path / "bars.csv"), "--store", str(db))
    assert code == 0, err
    if not actions:
        return db
    code, out, err = _invoke(
        "import", "actions", str(tmp_path / "actions.csv"), "--store", str(db), "--json"
    )
    assert code == 0 and not json.loads(out)[0]["rejections"], (err, out)
    return db


def _history_at_starts(
    db: Path, start: date, end: date, mode: str, symbols: list[str]
) -> dict[date, dict[str, list[tuple[float, float, float, float, int]]]]:
    """Each symbol's 1m history of 03-04 as each session starts (a backtest's view)."""
    from sessionflow import Event, SessionStartEvent, Settings, SystemManager
    from tests.helpers import run_collect

    seen: dict[date, dict[str, list[tuple[float, float, float, float, int]]]] = {}

    def probe(system: SystemManager, ev: Event) -> None:
        if isinstance(ev, SessionStartEvent):
            held = {s: system.data_manager.history(s, 1, date(2024, 3, 4)) for s in symbols}
            seen[ev.session] = {
                s: [(b.open, b.high, b.low, b.close, b.volume) for b in bars]
                for s, bars in held.items()
            }

    settings = Settings(
        store_path=db, symbols=symbols, start=start, end=end, trailing_days=2,
        historical_intervals=[1], adjustment=mode,
    )  # fmt: skip
    system, _ = run_collect(settings, on_event=probe)
    system.store.close()
    return seen


def _exported(
    db: Path, out: Path, as_of: date, mode: str
) -> dict[str, list[tuple[float, float, float, float, int]]]:
    args = ["--start", "2024-03-04", "--end", "2024-03-04", "-o", str(out), "--store", str(db)]
    code, _, err = _invoke(
        "export", "bars", *args, "--as-of", as_of.isoformat(), "--adjustment", mode
    )
    assert code == 0, err
    got: dict[str, list[tuple[float, float, float, float, int]]] = {}
    for row in out.read_text().splitlines()[1:]:
        sym, _, o, h, lo, c, v, _ = row.split(",")
        got.setdefault(sym, []).append((float(o), float(h), float(lo), float(c), int(v)))
    return got


def test_backtest_history_and_export_apply_one_as_of_rule(tmp_path: Path) -> None:
    """A 1-for-2 reverse split of A (ex 03-06) and a dividend of B (ex 03-05, factor 0.9):
    as of each session, the backtest's history and ``export bars --as-of`` hold the same
    values, and those are the formula's (no look-ahead: nothing before its ex-date)."""
    db = _store_with_actions(
        tmp_path,
        "A,2024-03-04T20:58:00Z,10,12,9,11,101\nA,2024-03-04T20:59:00Z,11,11,10,10,7\n"
        "B,2024-03-04T20:59:00Z,10,10,10,10,100\n",
        "A,2024-03-06,0.5,\nB,2024-03-05,,1.0\n",
    )
    raw = {"A": [(10.0, 12.0, 9.0, 11.0, 101), (11.0, 11.0, 10.0, 10.0, 7)],
           "B": [(10.0, 10.0, 10.0, 10.0, 100)]}  # fmt: skip

    def scaled(
        rows: list[tuple[float, float, float, float, int]], price: float, volume: float
    ) -> list[tuple[float, float, float, float, int]]:
        return [(o * price, h * price, lo * price, c * price, int(np.rint(v * volume)))
                for o, h, lo, c, v in rows]  # fmt: skip

    want = {
        date(2024, 3, 5): {"A": raw["A"], "B": scaled(raw["B"], 1 - 1.0 / 10, 1.0)},
        date(2024, 3, 6): {"A": scaled(raw["A"], 1 / 0.5, 0.5),
                           "B": scaled(raw["B"], 1 - 1.0 / 10, 1.0)},
    }  # fmt: skip
    assert want[date(2024, 3, 6)]["A"][0][4] == 50  # 101 x 0.5 rounded to even
    history = _history_at_starts(db, date(2024, 3, 5), date(2024, 3, 6), "split_dividend",
                                 ["A", "B"])  # fmt: skip
    for as_of, expected in want.items():
        assert history[as_of] == expected, as_of
        assert _exported(db, tmp_path / f"{as_of}.csv", as_of, "split_dividend") == expected
    # split only: B's dividend changes nothing, A's split as above
    split = _history_at_starts(db, date(2024, 3, 6), date(2024, 3, 6), "split", ["A", "B"])
    assert split[date(2024, 3, 6)] == {"A": want[date(2024, 3, 6)]["A"], "B": raw["B"]}
    assert _exported(db, tmp_path / "s.csv", date(2024, 3, 6), "split") == split[date(2024, 3, 6)]


def test_actions_out_of_bounds_are_rejected_by_both_importers(tmp_path: Path) -> None:
    db = _store_with_actions(tmp_path, "XYZ,2024-03-04T20:59:00Z,50,50,40,40,10\n", "")
    src = tmp_path / "bad.csv"
    src.write_text(
        "XYZ,2024-03-05,1e-300,\n"  # 1: a split that would make prices 1e300 times larger
        "XYZ,2024-03-06,1000001,\n"  # 2: above 1,000,000:1
        "XYZ,2024-03-07,nan,\n"  # 3
        "XYZ,2024-03-08,,39.99999\n"  # 4: factor 2.5e-7 of the 40 close
        "XYZ,2024-03-11,1000000,\n"  # 5: the bound itself is allowed
        "XYZ,2024-03-12,0.000001,39.9999\n"  # 6: so are 1-for-1,000,000 and factor 2.5e-6
    )
    code, out, err = _invoke("import", "actions", str(src), "--store", str(db), "--json")
    assert code == 0, err
    (report,) = json.loads(out)
    assert {(r["line"], r["reason"]) for r in report["rejections"]} == {
        (1, "bad_factor"), (2, "bad_factor"), (3, "bad_factor"), (4, "bad_factor")
    }  # fmt: skip
    assert report["new"] == 2
    factors = tmp_path / "lean" / "factor_files"
    factors.mkdir(parents=True)
    # split_factor 1e-300 -> 1: a 1e300-for-1 split between lines 1 and 2
    (factors / "xyz.csv").write_text("20240301,1,1e-300,40\n20240304,1,1,40\n20501231,1,1,0\n")
    code, out, err = _invoke(
        "import", "factors", str(tmp_path / "lean"), "--store", str(db), "--json"
    )
    (lean,) = json.loads(out)
    assert [(r["line"], r["reason"]) for r in lean["rejections"]] == [(2, "bad_factor")]
    assert "split 1e+300" in lean["rejections"][0]["detail"]


def _out_of_range_store(tmp_path: Path) -> Path:
    """1e14-share bars (the per-bar bound) and two 1,000,000:1 splits, each allowed."""
    return _store_with_actions(
        tmp_path,
        "XYZ,2024-03-04T20:58:00Z,50,50,40,40,100000000000000\n"
        "XYZ,2024-03-04T20:59:00Z,50,50,40,40,100000000000000\n"
        "XYZ,2024-03-05T20:59:00Z,50,50,40,40,10\n",
        "XYZ,2024-03-05,1000000,\nXYZ,2024-03-06,1000000,\n",
    )


def test_adjusted_volume_out_of_range_is_one_line_and_nothing_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = _out_of_range_store(tmp_path)
    out = tmp_path / "x.csv"
    args = ["--start", "2024-03-04", "--end", "2024-03-06", "-o", str(out), "--store", str(db)]
    code, stdout, err = _invoke("export", "bars", *args, "--as-of", "2024-03-06")
    assert code == 2 and stdout == "" and not out.exists()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "XYZ split 1e+06:1 ex 2024-03-05" in err and "volume" in err
    code, stdout, err = _invoke(
        "backtest", "--symbols", "XYZ", "--start", "2024-03-06", "--end", "2024-03-06",
        "--store", str(db), "--json",
    )  # fmt: skip
    assert code == 2 and stdout == "", stdout  # no session delivered, no report
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("error: XYZ split 1e+06:1 ex 2024-03-05")
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged either


def test_adjusted_price_out_of_range_from_a_stored_action_is_refused(tmp_path: Path) -> None:
    """An action stored before the bounds (or written by another tool): a 1e-300 split
    would turn a 40 close into 4e301; the export refuses it by name."""
    from sessionflow.corporate_actions import Action

    db = _store_with_actions(tmp_path, "XYZ,2024-03-04T20:59:00Z,50,50,40,40,10\n", "")
    store = DuckDBStore(db)
    try:
        store.write_actions([Action("XYZ", date(2024, 3, 5), split=1e-300)], [])
    finally:
        store.close()
    out = tmp_path / "x.csv"
    args = ["--start", "2024-03-04", "--end", "2024-03-05", "-o", str(out), "--store", str(db)]
    code, _, err = _invoke("export", "bars", *args, "--as-of", "2024-03-05")
    assert code == 2 and not out.exists()
    assert "XYZ split 1e-300:1 ex 2024-03-05" in err and "price" in err


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
