"""``sessionflow check``: every round runs for real and the figures say what was tried."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sessionflow.check.bad_input import run_bad_input
from sessionflow.check.reference import ROUNDS
from sessionflow.check.runner import CheckReport
from sessionflow.check.stores import build_check_store
from sessionflow.cli.app import app
from sessionflow.cli.check_cmd import render
from sessionflow.testing.postgres import missing_binaries
from sessionflow.time_provider import ExchangeCalendar

# The fixture runs the whole command once, reference rounds included (a PostgreSQL server,
# a web server): 127 s at load 9 on 2 cores (2026-12-07), past the default 120 s per test.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def check_json() -> dict[str, Any]:
    res = CliRunner().invoke(app, ["check", "--runs", "2", "--stress", "1", "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_figures_cover_every_round_and_pass(check_json: dict[str, Any]) -> None:
    fig = check_json["figures"]
    assert fig["ok"] is True
    assert fig["bad_input_classes"] == fig["bad_input_handled"] == 32
    assert fig["fault_scenarios"] == fig["fault_scenarios_survived"] == 9 + 4  # + store probes
    assert fig["faults_injected"] > 100  # every failed fill query counts
    assert fig["stop_states"] == 5 and fig["stop_max_seconds"] < 2.0
    assert fig["determinism_runs"] == 2 and fig["determinism_identical"] is True
    assert fig["stress_iterations"] == 1 and fig["stress_violations"] == 0
    assert fig["live_rounds"] == fig["live_rounds_passed"] == 1
    assert fig["reference_rounds"] == 8
    assert check_json["failures"] == []


def test_reference_rounds_compare_values_and_sharding_waits_for_its_flag(
    check_json: dict[str, Any],
) -> None:
    rounds = {r["round"]: r for r in check_json["reference"]}
    assert list(rounds) == list(ROUNDS)
    shard = rounds.pop("sharding")
    assert shard["status"] == "skipped" and "--sharding runs it" in shard["compared"]
    no_pg = missing_binaries() is not None and os.environ.get("CI") != "true"
    for name, r in rounds.items():
        assert r["ok"] and r["differences"] == [], r
        assert r["status"] == ("skipped" if no_pg and name == "PostgreSQL" else "pass"), r
    assert "5880 exported 1m bars as of 2024-12-04" in rounds["corporate actions"]["compared"]
    assert "/api/bars at 1m, 5m, 7m, 60m" in rounds["dashboard"]["compared"]
    assert "2 sessions" in rounds["parity"]["compared"], rounds["parity"]


def test_rounds_replay_quotes_ticks_and_extended_hours_and_live_matches_the_server(
    check_json: dict[str, Any],
) -> None:
    stress = check_json["stress"]
    assert stress["replayed"] > 0 and stress["filled"] > 0
    assert stress["extended"] > 0 and stress["quotes"] > 0 and stress["ticks"] > 0
    (live,) = check_json["live"]
    assert live["survived"] and "delivered and stored equal what was served" in live["detail"]
    assert "3 silent minutes backfilled from REST" in live["detail"]
    assert "(corrected=1)" in live["detail"]
    faults = {f["fault"]: f for f in check_json["faults"]}
    for kind in ("first 3 calls", "every 2nd call", "every call"):
        assert "equal a clean run's" in faults[f"fill source down ({kind})"]["detail"]


def test_every_bad_input_class_has_an_error_or_reasons(check_json: dict[str, Any]) -> None:
    rows = {b["case"]: b for b in check_json["bad_input"]}
    for name in ("duplicate bars", "out-of-order rows", "NaN price", "inf price", "high < low",
                 "negative volume", "bars outside the session", "mixed UTC offsets in one file",
                 "file truncated mid-row", "bad bars written into a running session",
                 "live: bar stamped in the future", "live: volume 2^63 (uint64)",
                 "live: timestamp beyond year 9999", "live: symbol with a space",
                 "volume >= 2^63", "year 9999", "price 0", "number 1_000",
                 "sub-microsecond time"):  # fmt: skip
        assert rows[name]["outcome"] == "rejected" and " x" in rows[name]["detail"], name
    for name in ("zero-length file", "wrong column names", "zip truncated mid-file",
                 "unknown symbol", "holiday-only date range", "session on a holiday",
                 "naive time without --tz", "--symbol with a symbol column",
                 "conflict across files of one import"):  # fmt: skip
        assert rows[name]["outcome"] == "error" and rows[name]["detail"], name
    assert all(b["store_intact"] in (True, None) for b in rows.values())
    assert "2024-11-28" in rows["holiday-only date range"]["detail"]


def test_faults_name_what_was_injected_and_what_held(check_json: dict[str, Any]) -> None:
    faults = {f["fault"]: f for f in check_json["faults"]}
    assert "SIGKILL inside the MERGE" in faults["kill -9 mid-import"]["detail"]
    assert "store checksum unchanged" in faults["kill -9 mid-backtest"]["detail"]
    assert "0 not recoverable" in faults["fill source down (first 3 calls)"]["detail"]
    assert "all reported as gaps" in faults["fill source down (every call)"]["detail"]
    assert "0 events, clock unchanged" in faults["pause during a paced wait"]["detail"]
    assert "naming sessionflow-coordinator" in faults["stop() with a blocked consumer"]["detail"]
    assert [s["state"] for s in check_json["stop"]] == [
        "before start", "running", "paused", "after finish", "from a callback",
    ]  # fmt: skip
    stress = check_json["stress"]
    assert stress["snapshots"] > 0 and stress["filled"] > 0 and stress["violations"] == []


def test_store_probes_cover_locks_readers_damage_and_the_demo(check_json: dict[str, Any]) -> None:
    faults = {f["fault"]: f for f in check_json["faults"]}
    lock = faults["store locked by another process"]
    assert lock["survived"] and "is in use by another process (PID" in lock["detail"]
    readers = faults["two backtests at once on one store"]
    assert readers["survived"] and "exit [0, 0], identical results" in readers["detail"]
    damaged = faults["damaged or newer store"]["detail"]
    assert "truncated refused" in damaged and "schema 99 refused" in damaged
    demo = faults["demo next to a user's store"]["detail"]
    assert "demo ran on demo.duckdb (filled)" in demo and "byte-identical" in demo


def test_table_shows_each_class_and_fails_an_incomplete_report(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    """Only the bad-input round ran here, so the figures must say FAIL, not PASS."""
    store = tmp_path / "check.duckdb"
    build_check_store(store, calendar).close()
    report = CheckReport(bad_input=run_bad_input(tmp_path / "bad", store, calendar))
    console = Console(record=True, width=200)
    render(console, report)
    text = console.export_text()
    assert "duplicate x1 (line 4)" in text and "file is empty" in text
    assert "bad-input classes tried │ 32 (32 with a clear error" in text
    assert "FAIL" in text and "PASS" not in text
