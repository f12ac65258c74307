"""Sharded backtests and reports on Dask equal the single process, exactly.

Real LEAN data in a DuckDB store: SPY, AIG, BAC over 2013-10-04..10-11 (real gaps) and
AAPL, TWX around AAPL's 7-for-1 split on 2014-06-09 (history adjusted across a shard
boundary). Runs go through the CLI as a user runs them, on one 2-worker cluster this
module starts itself (``--scheduler``) and once on ``--workers 2``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.events import Event, SessionStartEvent
from sessionflow.export import export_chunks
from sessionflow.models import Bar, to_us
from sessionflow.sharding import (
    Shard,
    ShardError,
    build_shard,
    merge_results,
    plan_shards,
    run_shard,
    run_sharded,
    store_name,
)
from sessionflow.store import DuckDBStore
from sessionflow.system_manager import Settings, SystemManager, build_system
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import shared_data

runner = CliRunner()
OCTOBER = ["--symbols", "SPY,AIG,BAC", "--start", "2013-10-04", "--end", "2013-10-11"]
# 06-10 has no stored bars: its trailing history (06-03..06-09) spans the split
SPLIT = ["--symbols", "AAPL,TWX", "--start", "2014-06-05", "--end", "2014-06-10"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lean, factors = shared_data("lean-minute"), shared_data("lean-factors")
    path = tmp_path_factory.mktemp("shard") / "lean.duckdb"
    for args in (["import", "lean", str(lean)], ["import", "factors", str(factors)]):
        res = runner.invoke(app, [*args, "--store", str(path)])
        assert res.exit_code == 0, res.output
    return path


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A 2-process cluster started here; tests reach it only by its address."""
    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


def run(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def test_plan_covers_every_symbol_session_once(calendar: ExchangeCalendar) -> None:
    sessions = calendar.sessions(date(2024, 1, 2), date(2024, 3, 28))
    symbols = [f"S{i:03d}" for i in range(37)]
    shards = plan_shards(symbols, sessions, 3, symbols_per_shard=7, sessions_per_shard=25)
    cells = [(s, d) for sh in shards for s in sh.symbols for d in _days(calendar, sh)]
    assert sorted(cells) == sorted((s, x.date) for s in symbols for x in sessions)
    assert len({sh.symbols for sh in shards}) == 6  # 37 symbols in groups of at most 7
    firsts = {sh.start: sh.previous for sh in shards}
    assert firsts[sessions[0].date] is None
    assert firsts[sessions[25].date] == sessions[24].date  # a later range knows its previous


def test_default_plan_splits_dates_before_symbols(calendar: ExchangeCalendar) -> None:
    """Wide symbol groups replay cheaper per bar; dates give the workers their shards."""
    twenty = calendar.sessions(date(2024, 11, 18), date(2024, 12, 16))
    shards = plan_shards([f"S{i}" for i in range(500)], twenty, workers=2)
    assert [(len(s.symbols), len(_days(calendar, s))) for s in shards] == [(500, 5)] * 4
    year = calendar.sessions(date(2024, 1, 2), date(2024, 12, 31))
    shards = plan_shards([f"S{i}" for i in range(1200)], year, workers=4)
    assert {len(s.symbols) for s in shards} == {400}  # 3 even groups of at most 500
    assert max(len(_days(calendar, s)) for s in shards) == 60  # long ranges are cut at 60


def _days(calendar: ExchangeCalendar, shard: Shard) -> list[date]:
    return [s.date for s in calendar.sessions(shard.start, shard.end)]


def test_report_sharded_by_symbols_and_dates_equals_single(store: Path, scheduler: str) -> None:
    """3 symbol shards x 2 date shards; 10-11 starts a shard and loads 10-04..10-10 as its
    history (the store's first day is the oldest of its 5 trailing days), which its rows'
    ``trailing_volume`` sums: a shard loading a day too few differs from the single run."""
    base = ["report", *OCTOBER, "--store", str(store), "--json"]
    single = run(*base)
    cuts = ["--shard-sessions", "5", "--shard-symbols", "1"]
    sharded = run(*base, "--scheduler", scheduler, *cuts)
    assert sharded == single
    rows = json.loads(single)
    assert len(rows) == 18
    assert sum(r["gaps_found"] for r in rows) > 0  # real gaps, so equality says something
    assert all(r["volume"] > 0 and r["high"] >= r["low"] for r in rows)
    _trailing_volume_is_history(store, rows, ["SPY", "AIG", "BAC"])


def test_backtest_across_split_and_shard_boundary_equals_single(
    store: Path, scheduler: str
) -> None:
    """Derived bars, rejections, quotes and the actions each session lists, per session."""
    base = ["backtest", *SPLIT, "--store", str(store), "--json"]
    single = run(*base)
    sharded = run(*base, "--scheduler", scheduler, "--shard-sessions", "3", "--shard-symbols", "1")
    assert sharded == single
    sessions = json.loads(single)["sessions"]
    listed = {s["session"]: [a["symbol"] for a in s["actions"]] for s in sessions}
    # AAPL's split and TWX's Time Inc. spin-off, once, where history rolled over them
    assert listed["2014-06-09"] == ["AAPL", "TWX"]
    assert listed["2014-06-10"] == []  # not again at the start of the second range
    assert all(r["derived"]["5"] > 0 for r in sessions[0]["rows"])
    rows = [{"session": s["session"], **r} for s in sessions for r in s["rows"]]
    _trailing_volume_is_history(store, rows, ["AAPL", "TWX"])


def _trailing_volume_is_history(
    store: Path, rows: list[dict[str, Any]], symbols: list[str]
) -> None:
    """Each row's ``trailing_volume`` is the volume of the 5 sessions before it, adjusted as
    of it (AAPL x7 before its split): so the output depends on the history each session
    (and each date shard's first session) loaded, and equality with the single process
    says the shards loaded the same days."""
    calendar = ExchangeCalendar()
    ro = DuckDBStore(store, read_only=True)
    try:
        for row in rows:
            day = date.fromisoformat(row["session"])
            want = 0
            for past in calendar.previous_sessions(day, 5):
                (got,) = export_chunks(ro, [row["symbol"]], [past], 1, as_of=day,
                                       adjustment="split")  # fmt: skip
                want += int(got.volume.sum())
            assert row["trailing_volume"] == want, (row["session"], row["symbol"])
    finally:
        ro.close()
    assert {r["symbol"] for r in rows} == set(symbols)
    assert all(r["trailing_volume"] > 0 for r in rows if r["session"] == rows[-1]["session"])


def test_backtest_workers_2_equals_single_process(store: Path, scheduler: str) -> None:
    """``--workers 2`` starts its own cluster (default plan: 10-04..10-10, 10-11); JSON and
    tables are the single process's output."""
    base = ["backtest", *OCTOBER, "--store", str(store)]
    assert run(*base, "--json", "--workers", "2") == run(*base, "--json")
    assert run(*base, "--scheduler", scheduler, "--shard-sessions", "4") == run(*base)


def history_at_starts(system: SystemManager) -> dict[date, dict[tuple[str, int], list[Bar]]]:
    """Every symbol's trailing history (each interval, each day) as each session starts."""
    seen: dict[date, dict[tuple[str, int], list[Bar]]] = {}
    dm, settings = system.data_manager, system.settings
    cal = system.calendar

    def probe(ev: Event) -> None:
        if not isinstance(ev, SessionStartEvent):
            return
        days = cal.previous_sessions(ev.session, settings.trailing_days)
        seen[ev.session] = {
            (sym, k): [b for d in days for b in dm.history(sym, k, d.date)]
            for sym in settings.symbols
            for k in settings.historical_intervals
        }

    system.on_event(probe)
    system.run()
    return seen


@pytest.mark.parametrize(
    ("symbols", "start", "end", "first"),
    [
        (["SPY", "AIG", "BAC"], "2013-10-04", "2013-10-11", "2013-10-09"),
        (["AAPL", "TWX"], "2014-06-05", "2014-06-10", "2014-06-09"),  # split-adjusted history
    ],
)
def test_date_shard_history_equals_rolled_history(
    store: Path, symbols: list[str], start: str, end: str, first: str
) -> None:
    """A shard loads its history from the store; the single process rolled it session by
    session (and scaled it at the split). Both must hold the same bars at every start."""
    settings = Settings.load(store_path=store, symbols=symbols, start=start, end=end)
    full = history_at_starts(build_system(settings))
    day = date.fromisoformat(first)
    prev = max(d for d in full if d < day)
    shard = Shard(0, tuple(sorted(symbols)), day, date.fromisoformat(end), prev)
    ro = DuckDBStore(store, read_only=True)
    try:
        part = history_at_starts(build_shard(settings, shard, ro))
    finally:
        ro.close()
    assert set(part) == {d for d in full if d >= day}
    assert sum(len(bars) for bars in part[day].values()) > 1000  # history was loaded
    for session, hist in part.items():
        assert hist == full[session], session


def _minute_bars(day: date, minutes: int, seed: int) -> list[str]:
    """``minutes`` 1m bars from 09:30 ET with cent prices that do not scale exactly."""
    rows = []
    for i in range(minutes):
        c = round(41.0 + ((seed * 389 + i * 137) % 2017) / 100, 2)
        hh, mm = divmod(9 * 60 + 30 + i, 60)
        rows.append(f"{day}T{hh:02d}:{mm:02d}:00-05:00,{c},{c + 0.07:.2f},{c - 0.05:.2f},{c},"
                    f"{101 + (seed * 7 + i * 13) % 997}")  # fmt: skip
    return rows


def test_two_actions_in_one_window_give_bit_identical_history_at_a_date_shard(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    """XYZ splits 3-for-1 (11-21) and 7-for-1 (11-25), a 1-for-2 reverse split on 11-26:
    the single process scales history at each roll, a shard starting on 11-26 or 11-27
    loads history adjusted across all of them. Prices and volumes must be the same bits."""
    days = [s.date for s in calendar.sessions(date(2024, 11, 12), date(2024, 11, 27))]
    csv = tmp_path / "xyz.csv"
    rows = [r for n, d in enumerate(days) for r in _minute_bars(d, 60, n)]
    csv.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    actions = tmp_path / "actions.csv"
    actions.write_text("symbol,ex_date,split,dividend\nXYZ,2024-11-21,3,\nXYZ,2024-11-25,7,\n"
                       "XYZ,2024-11-26,0.5,\n")  # fmt: skip
    db = tmp_path / "xyz.duckdb"
    for args in (
        ["import", "bars", str(csv), "--symbol", "XYZ"],
        ["import", "actions", str(actions)],
    ):
        res = runner.invoke(app, [*args, "--store", str(db)])
        assert res.exit_code == 0, res.output
    settings = Settings.load(store_path=db, symbols=["XYZ"], start="2024-11-19", end="2024-11-27")
    full = history_at_starts(build_system(settings))
    ro = DuckDBStore(db, read_only=True)
    try:
        for first in (date(2024, 11, 26), date(2024, 11, 27)):
            prev = max(d for d in full if d < first)
            shard = Shard(0, ("XYZ",), first, date(2024, 11, 27), prev)
            part = history_at_starts(build_shard(settings, shard, ro))
            assert sum(len(b) for b in part[first].values()) == 5 * 60 + 5 * 12
            for session, hist in part.items():
                for key, bars in hist.items():
                    differ = [(a, b) for a, b in zip(bars, full[session][key], strict=True)
                              if a != b]  # fmt: skip
                    assert not differ, (first, session, key, len(differ), differ[0])
        # export --as-of gives the same bits (the one as-of rule, SessionData.adjust_history)
        last = date(2024, 11, 27)
        for day in calendar.previous_sessions(last, settings.trailing_days):
            for k in (1, 5):
                (got,) = export_chunks(ro, ["XYZ"], [day], k, as_of=last, adjustment="split")
                want = [(to_us(b.ts), b.open, b.high, b.low, b.close, b.volume)
                        for b in full[last][("XYZ", k)] if b.ts.date() == day.date]  # fmt: skip
                assert list(zip(got.ts_us.tolist(), got.open.tolist(), got.high.tolist(),
                                got.low.tolist(), got.close.tolist(), got.volume.tolist(),
                                strict=True)) == want, (day.date, k)  # fmt: skip
    finally:
        ro.close()


def test_sharded_refuses_paced_replay_before_starting_a_cluster(store: Path) -> None:
    res = runner.invoke(
        app, ["backtest", *OCTOBER, "--store", str(store), "--workers", "2", "--speed", "1"]
    )
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --workers/--scheduler replay as fast as possible")
    assert len(res.stderr.strip().splitlines()) == 1


def test_shard_sizes_without_a_cluster_are_refused(store: Path) -> None:
    res = runner.invoke(app, ["report", *OCTOBER, "--store", str(store), "--shard-sessions", "2"])
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: --shard-sessions/--shard-symbols need --workers or --scheduler"
    )


def test_sharded_missing_store_is_the_single_process_error(tmp_path: Path) -> None:
    args = ["report", *OCTOBER, "--store", str(tmp_path / "none.duckdb")]
    single = runner.invoke(app, args)
    sharded = runner.invoke(app, [*args, "--workers", "2"])
    assert (sharded.exit_code, sharded.stderr) == (single.exit_code, single.stderr)
    assert single.exit_code == 2 and "does not exist" in single.stderr


def test_a_failing_shard_is_one_line_that_survives_the_trip_back(
    store: Path, tmp_path: Path
) -> None:
    """A worker's store error (here: a damaged file) comes back as one line naming the shard;
    the store's own error class would not survive pickling."""
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"not a database" * 100)
    day = "2013-10-04"
    settings = Settings.load(store_path=store, symbols=["SPY"], start=day, end=day)
    shard = Shard(4, ("SPY",), date(2013, 10, 4), date(2013, 10, 4), None)
    with pytest.raises(ShardError) as caught:
        run_shard(settings, shard, str(bad))
    back = pickle.loads(pickle.dumps(caught.value))
    assert str(back) == str(caught.value)
    assert str(back).startswith(f"shard 4 (SPY 2013-10-04..2013-10-04): store {bad} ")
    assert "\n" not in str(back)


def test_unreachable_scheduler_is_one_line(store: Path) -> None:
    res = runner.invoke(
        app, ["report", *OCTOBER, "--store", str(store), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert res.exit_code == 2
    assert res.stderr.startswith("error: scheduler tcp://127.0.0.1:9: cannot connect")
    assert len(res.stderr.strip().splitlines()) == 1


def test_progress_sees_every_shard_once_and_merge_ignores_finish_order(
    store: Path, scheduler: str, calendar: ExchangeCalendar
) -> None:
    """The library path the CLI uses: one callback per finished shard; merging the results
    in any order gives the same sessions."""
    from distributed import Client

    settings = Settings.load(
        store_path=store, symbols=["SPY", "AIG", "BAC"], start="2013-10-04", end="2013-10-11"
    )
    assert settings.start is not None and settings.end is not None
    shards = plan_shards(settings.symbols, calendar.sessions(settings.start, settings.end), 2, 2, 2)
    seen: list[int] = []
    client = Client(scheduler)
    try:
        results = run_sharded(
            client, settings, shards, store_name(store), lambda r: seen.append(r.shard.index)
        )
    finally:
        client.close()
    assert sorted(seen) == list(range(len(shards))) == list(range(6))
    forward = merge_results(results, settings.symbols)
    backward = merge_results(results[::-1], settings.symbols)
    assert forward == backward
    assert [r.session for r in forward.reports] == [
        s.date for s in calendar.sessions(settings.start, settings.end)
    ]
    assert forward.bars == sum(r.bars for rep in forward.reports for r in rep.rows) > 0


SHARD_DRIVER = """
import sys
from sessionflow.cli import sharded

real = sharded.run_sharded

def run(client, settings, shards, store, on_result=None):
    def seen(result):
        if on_result is not None:
            on_result(result)
        print(f"shard done {result.shard.index}", file=sys.stderr, flush=True)
    return real(client, settings, shards, store, seen)

if __name__ == "__main__":  # the local cluster spawns processes that import this file
    sharded.run_sharded = run
    from sessionflow.cli.app import main
    sys.argv = ["sessionflow", *sys.argv[1:]]
    main()
"""


def test_ctrl_c_to_the_process_group_keeps_completed_sessions(store: Path, tmp_path: Path) -> None:
    """As a terminal sends it: SIGINT reaches the command and its workers. The command
    prints the sessions every symbol completed (equal to the single run's), exits 130, and
    no worker prints a traceback."""
    driver = tmp_path / "driver.py"
    driver.write_text(SHARD_DRIVER)
    base = ["backtest", *OCTOBER, "--store", str(store), "--json"]
    cuts = ["--workers", "1", "--shard-sessions", "1", "--shard-symbols", "1"]  # 18 shards
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(driver), *base, *cuts],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    err: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in iter(proc.stderr.readline, b""):
            err.append(line.decode(errors="replace"))
            if sum("shard done" in x for x in err) >= 13:  # 10-04, 10-07 have all symbols
                done.set()
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert done.wait(120), "".join(err)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(10)
    text = "".join(err)
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    sessions = json.loads(out)["sessions"]
    assert json.loads(out)["interrupted"] is True
    assert 1 <= len(sessions) < 6
    assert f"interrupted: {len(sessions)} of 6 session(s) completed" in text
    single = {s["session"]: s for s in json.loads(run(*base))["sessions"]}
    assert all(s == single[s["session"]] for s in sessions)


def test_relative_store_path_reaches_workers_with_another_cwd(
    store: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers started in another directory: they get the store's absolute path."""
    monkeypatch.chdir(store.parent)
    base = ["report", "--symbols", "SPY", "--start", "2013-10-10", "--end", "2013-10-11"]
    base += ["--store", store.name, "--json"]
    assert run(*base, "--scheduler", scheduler) == run(*base)


def test_progress_on_a_terminal_counts_shards(store: Path, scheduler: str) -> None:
    from tests.test_progress import Child

    args = ["report", *OCTOBER, "--store", str(store), "--scheduler", scheduler]
    child = Child(["-c", "from sessionflow.cli.app import main; main()", *args])
    try:
        shown = child.wait_for("shards")
    finally:
        code = child.finish()
    err = child.err.decode(errors="replace")
    assert shown and code == 0, err
    assert "sharded" in err and "bars/s" in err, err
    assert "SPY" in child.out.decode()


def test_sharded_report_from_postgresql_equals_single_from_duckdb(
    store: Path, scheduler: str, pg_url: str
) -> None:
    """The workers open the server store by URL; the merge equals the DuckDB single run."""
    copied = runner.invoke(app, ["store", "copy", str(store), pg_url])
    assert copied.exit_code == 0, copied.output
    single = run("report", *OCTOBER, "--store", str(store), "--json")
    cuts = ["--shard-sessions", "3", "--shard-symbols", "2"]
    sharded = run("report", *OCTOBER, "--store", pg_url, "--json", "--scheduler", scheduler, *cuts)
    assert sharded == single
    assert run("report", *OCTOBER, "--store", pg_url, "--json") == single
