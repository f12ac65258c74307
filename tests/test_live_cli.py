"""``sessionflow live`` end to end against the local server, on a fast simulated clock."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.cli.live_cmd import health_line
from sessionflow.testing.alpaca_server import FakeAlpaca, updated_bar_msg
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.time_provider.live_clock import WallTimeClock
from tests.live_support import KEY, SECRET, SYMBOLS, day_bars

ALPACA_ENV = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
OUR_ENV = {"SESSIONFLOW_LIVE__KEY_ID": KEY, "SESSIONFLOW_LIVE__SECRET_KEY": SECRET}


def _run(
    server: FakeAlpaca, tmp_path: Path, start: str, *extra: str, env: dict[str, str] = ALPACA_ENV
) -> tuple[int, str]:
    args = ["live", "--symbols", ",".join(SYMBOLS), "--feed-url", server.ws_url]
    args += ["--rest-url", server.rest_url, "--store", str(tmp_path / "live.duckdb")]
    args += ["--clock-start", start, "--clock-rate", "60", *extra]
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def test_cli_joins_the_early_close_session_backfills_the_morning_and_reports(
    tmp_path: Path,
) -> None:
    start = "2024-11-29T12:58:00-05:00"  # two minutes before the 13:00 ET early close
    bars = day_bars(ExchangeCalendar())
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)  # the morning comes from REST ...
        t0 = datetime.fromisoformat(start)
        server.replay([b for b in bars if b.ts >= t0], WallTimeClock(t0, rate=60))  # ... live
        code, output = _run(server, tmp_path, start, "--json", env=OUR_ENV)
    assert code == 0, output
    out = json.loads(output[output.index("{") :])
    (session,) = out["sessions"]
    assert session["session"] == "2024-11-29" and session["early_close"]
    for row in session["rows"]:
        assert (row["bars"], row["expected"], row["quality"]) == (210, 210, 100.0)
        assert row["volume"] == sum(b.volume for b in bars if b.symbol == row["symbol"])
    assert out["settings"]["live"]["secret_key"] == "**********"  # masked in the dump
    assert out["counters"]["store_rows"] == 420  # live and filled bars all stored
    assert KEY not in output and SECRET not in output


def test_cli_prints_the_backtest_table_and_feed_health(tmp_path: Path) -> None:
    start = "2024-11-29T12:59:00-05:00"
    bars = day_bars(ExchangeCalendar())
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        code, output = _run(server, tmp_path, start)
    assert code == 0, output
    assert "2024-11-29 (early close)" in output and "100.00" in output
    assert "feed:" in output and "malformed" in output


def test_cli_health_line_says_corrected_bars_and_rest_rate_limits(tmp_path: Path) -> None:
    """A correction and a 429 during the session: both counts in the normal summary."""
    start = "2024-11-29T12:56:00-05:00"
    t0 = datetime.fromisoformat(start)
    bars = day_bars(ExchangeCalendar())
    fix = next(b for b in bars if b.ts == t0 - timedelta(minutes=1) and b.symbol == SYMBOLS[0])
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        server.limit_rest(1, 0.2)  # the morning's backfill meets one 429 first
        server.replay([b for b in bars if b.ts >= t0], WallTimeClock(t0, rate=60))

        def correct() -> None:
            if server.wait_subscriptions(1):
                server.push([updated_bar_msg(fix._replace(volume=fix.volume + 5))])

        pusher = threading.Thread(target=correct, daemon=True)
        pusher.start()
        code, output = _run(server, tmp_path, start)
        pusher.join(10)
    assert code == 0, output
    assert "corrected 1" in output and "rest_rate_limited 1" in output


def test_health_line_lists_every_other_non_zero_counter() -> None:
    line = health_line({"feed_items": 5, "outside_session": 2, "late_quotes": 0}, corrected=3)
    assert line.endswith("rows; corrected 3, outside_session 2")
    assert health_line({"feed_items": 5}).endswith("0 rows")


def test_cli_bad_keys_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    with FakeAlpaca(KEY, "another-secret") as server:
        code, output = _run(server, tmp_path, "2024-11-29T12:59:00-05:00")
    assert code == 2
    assert "402 auth failed" in output and SECRET not in output
