"""``sessionflow live`` says what it is doing on stderr, and ``--json`` after a Ctrl-C says
it was interrupted and carries the session it cut (issue 20 item 18).

A real process, a real SIGINT, the local Alpaca server on a fast simulated clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.cli.live_cmd import LiveProgress
from sessionflow.events import BarSliceEvent, SessionStartEvent
from sessionflow.store.base import BarBatch
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.time_provider.live_clock import WallTimeClock
from tests.live_support import KEY, SECRET, SYMBOLS, day_bars

NY = ZoneInfo("America/New_York")
COMMAND = Path(sys.executable).with_name("sessionflow")


def test_progress_lines_go_to_stderr(capsys: object) -> None:
    progress = LiveProgress(NY, every_s=0)
    opens = datetime(2024, 11, 29, 14, 30, tzinfo=UTC)
    closes = datetime(2024, 11, 29, 18, 0, tzinfo=UTC)
    progress(SessionStartEvent(date(2024, 11, 29), opens, closes, opens))
    batch = BarBatch(
        symbol=np.array(["AAPL", "MSFT"], dtype=object), ts_us=np.zeros(2, dtype=np.int64),
        open=np.ones(2), high=np.ones(2), low=np.ones(2), close=np.ones(2),
        volume=np.ones(2, dtype=np.int64),
    )  # fmt: skip
    progress(BarSliceEvent(batch, opens))
    out = capsys.readouterr()  # type: ignore[attr-defined]
    assert out.out == ""
    assert out.err.splitlines() == [
        "live: session 2024-11-29 09:30-13:00 America/New_York started",
        "live: 2024-11-29 09:30 America/New_York: 2 bars this session",
    ]


def test_ctrl_c_under_json_says_interrupted_and_keeps_the_cut_session(tmp_path: Path) -> None:
    start = "2024-11-29T12:40:00-05:00"  # 20 simulated minutes before the early close
    bars = day_bars(ExchangeCalendar())
    t0 = datetime.fromisoformat(start)
    env = {**os.environ, "SESSIONFLOW_LIVE__KEY_ID": KEY, "SESSIONFLOW_LIVE__SECRET_KEY": SECRET}
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        server.replay([b for b in bars if b.ts >= t0], WallTimeClock(t0, rate=60))
        proc = subprocess.Popen(
            [str(COMMAND), "live", "--symbols", ",".join(SYMBOLS), "--feed-url", server.ws_url,
             "--rest-url", server.rest_url, "--store", str(tmp_path / "live.duckdb"),
             "--clock-start", start, "--clock-rate", "60", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        started = threading.Event()
        err: list[str] = []

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                err.append(line)
                if "started" in line:
                    started.set()
            started.set()  # ended without a session: fail at once

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert started.wait(120) and proc.poll() is None, "".join(err)
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(10)
    assert proc.returncode == 130, "".join(err)
    assert err[0].startswith("live: 2 symbol(s), feed ") and "waiting for bars" in err[0]
    out = json.loads(stdout)
    assert out["interrupted"] is True
    (cut,) = out["sessions"]
    assert cut["session"] == "2024-11-29" and cut["partial"] is True
    assert {r["symbol"] for r in cut["rows"]} == set(SYMBOLS)
