"""One PostgreSQL database, four processes at once: live writing, a report, a backtest, an import.

This is why the server store exists: with one DuckDB file the live session would
hold the lock and every other command would fail. Here the real ``sessionflow``
CLI runs in child processes; the live one streams from a local Alpaca-protocol
server on a 30x clock. The readers and the import must finish while the live
session is still running (nothing waits for another command, at most for a
transaction), and afterwards every bar of every writer is there, none twice, and
the report equals the one from a DuckDB store holding the same history.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.demo import synthetic_bars
from sessionflow.models import from_us
from sessionflow.store import open_store
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.testing.feed_replay import ReplayPlan, start_replay
from sessionflow.time_provider import ExchangeCalendar
from tests.live_support import DAY, KEY, SECRET, SYMBOLS
from tests.store_support import argv, env

HISTORY = (date(2024, 11, 25), date(2024, 11, 27))
IMPORTED = ["IMPA", "IMPB", "IMPC", "IMPD"]
LIVE_FROM = "2024-11-29T12:48:00-05:00"  # 12 minutes before the early close: 60 s at 12x
RATE = "12"  # 60 s of live session: the others end first even at a load of 15 on 2 cores
TIMEOUT = 240


def spawn(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv(*args),
        env={**env(), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def import_csv(path: Path, calendar: ExchangeCalendar) -> int:
    batch = synthetic_bars(calendar, IMPORTED, date(2024, 12, 2), date(2024, 12, 4))
    lines = ["symbol,timestamp,open,high,low,close,volume"]
    for b in batch.iter_bars():
        lines.append(f"{b.symbol},{b.ts.isoformat()},{b.open!r},{b.high!r},{b.low!r},"
                     f"{b.close!r},{b.volume}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return len(batch)


def test_live_writes_while_a_report_a_backtest_and_an_import_run(
    pg_url: str, tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    history = synthetic_bars(calendar, SYMBOLS, *HISTORY)
    seeded = open_store(pg_url)
    seeded.upsert_bars(history)
    seeded.close()
    reference = tmp_path / "reference.duckdb"  # the same history in a DuckDB file
    ref = open_store(reference)
    ref.upsert_bars(history)
    ref.close()
    imported = import_csv(tmp_path / "import.csv", calendar)
    session = calendar.session(DAY)
    live_bars = list(synthetic_bars(calendar, SYMBOLS, DAY, DAY).iter_bars())
    start = datetime.fromisoformat(LIVE_FROM)
    span = ["--symbols", ",".join(SYMBOLS), "--start", "2024-11-25", "--end", "2024-11-27"]

    with FakeAlpaca(KEY, SECRET) as server:
        plan = ReplayPlan(session, start, live_bars)
        replay: list[object] = []
        streaming = threading.Thread(
            target=lambda: replay.append(start_replay(server, plan, float(RATE), timeout=TIMEOUT))
        )
        streaming.start()
        live = spawn(
            "live", "--symbols", ",".join(SYMBOLS), "--feed-url", server.ws_url,
            "--rest-url", server.rest_url, "--store", pg_url, "--clock-start", LIVE_FROM,
            "--clock-rate", RATE, "--json",
            extra_env={"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET},
        )  # fmt: skip
        try:
            assert server.wait_subscriptions(1, timeout=TIMEOUT), live.stderr
            others = {
                "report": spawn("report", *span, "--store", pg_url, "--json"),
                "backtest": spawn("backtest", *span, "--store", pg_url, "--json"),
                "import": spawn("import", "bars", str(tmp_path / "import.csv"), "--store",
                                pg_url, "--json"),
            }  # fmt: skip
            results = {}
            for name, proc in others.items():
                out, err = proc.communicate(timeout=TIMEOUT)
                assert proc.returncode == 0, f"{name}: {err}"
                results[name] = out
            # the readers and the import did not wait for the live session to end
            assert live.poll() is None, "live ended before the others: no overlap was tested"
            live_out, live_err = live.communicate(timeout=TIMEOUT)
        finally:
            if live.poll() is None:
                live.kill()
                live.communicate()
            streaming.join(timeout=TIMEOUT)
    assert live.returncode == 0, live_err

    counts = json.loads(live_out[live_out.index("{") :])["counters"]
    assert counts["store_rows"] == len(live_bars)
    report = json.loads(results["import"])
    assert (report[0]["new"], report[0]["committed"]) == (imported, True)
    store = open_store(pg_url, read_only=True)
    try:  # every writer's rows, none twice (the primary key would refuse a duplicate anyway)
        assert store.count_bars() == len(history) + len(live_bars) + imported
        on_day = store.load_bars(SYMBOLS, session.open, session.close)
        assert len(on_day) == len(live_bars) == 2 * 210
        got_imp = store.load_bars(IMPORTED, from_us(0), session.close + timedelta(days=30))
        assert len(got_imp) == imported
    finally:
        store.close()
    res = CliRunner().invoke(app, ["report", *span, "--store", str(reference), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(results["report"]) == json.loads(res.stdout)
    bt = json.loads(results["backtest"])
    assert [s["session"] for s in bt["sessions"]] == ["2024-11-25", "2024-11-26", "2024-11-27"]
    assert not bt["interrupted"]


def test_an_import_counts_rows_another_writer_committed_while_it_waited(
    pg_url: str, tmp_path: Path
) -> None:
    """The plan (new/unchanged/replaced) is made after other writers' transactions end.

    Another writer holds the same bars uncommitted; the import must wait for it and then
    call them unchanged, not plan them as new and overwrite them unseen.
    """
    open_store(pg_url).close()  # the schema
    rows = [f"AAA,2024-11-25T14:{30 + i}:00+00:00,1.0,2.0,0.5,1.5,{100 + i}" for i in range(3)]
    csv = tmp_path / "a.csv"
    csv.write_text("symbol,timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    with psycopg.connect(pg_url) as other:
        for i in range(3):
            other.execute(
                "INSERT INTO bars_1m VALUES ('AAA', %s, 1.0, 2.0, 0.5, 1.5, %s, true)",
                [datetime.fromisoformat(f"2024-11-25T14:{30 + i}:00+00:00"), 100 + i],
            )
        proc = spawn("import", "bars", str(csv), "--store", pg_url, "--json")
        with psycopg.connect(pg_url, autocommit=True) as watch:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.05)  # polling the server's view of the import, bounded above
        other.commit()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (got,) = json.loads(out)
    assert (got["new"], got["unchanged"], got["replaced"]) == (0, 3, 0), got
