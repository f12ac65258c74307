"""Ctrl-C on a command whose consumer is stuck: one line naming the thread, non-zero exit.

Real processes and a real SIGINT. The only thing added to the command is a consumer
callback that blocks (the CLI has no plug-in point for one, so a small driver script
wraps ``build_system``); everything else is the installed command as a user runs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sessionflow.demo import DEMO_START, DEMO_SYMBOLS

DRIVER = """
import sys, threading
from sessionflow.cli import app, report_cmd
from sessionflow.events import BarEvent

release = threading.Event()
real = app.build_system

def build(*args, **kwargs):
    system = real(*args, **kwargs)
    def stuck(ev):
        if isinstance(ev, BarEvent):
            print("BLOCKED", flush=True)
            release.wait(60)
    system.on_event(stuck)
    return system

app.build_system = report_cmd.build_system = build
sys.argv = ["sessionflow", *sys.argv[1:]]
app.main()
"""


LIVE_DRIVER = """
import os, sys, threading
from sessionflow.cli import live_cmd
from sessionflow.events import SessionStartEvent
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.time_provider import ExchangeCalendar
from tests.live_support import KEY, SECRET, SYMBOLS, day_bars

release = threading.Event()
real = live_cmd.build_system

def build(*args, **kwargs):
    system = real(*args, **kwargs)
    def stuck(ev):
        if isinstance(ev, SessionStartEvent):
            print("BLOCKED", flush=True)
            release.wait(60)
    system.on_batch(stuck)
    return system

live_cmd.build_system = build
os.environ.update(APCA_API_KEY_ID=KEY, APCA_API_SECRET_KEY=SECRET)
server = FakeAlpaca(KEY, SECRET).start()
server.add_rest_bars(day_bars(ExchangeCalendar()))
sys.argv = ["sessionflow", "live", "--symbols", ",".join(SYMBOLS), "--feed-url", server.ws_url,
            "--rest-url", server.rest_url, "--store", sys.argv[1],
            "--clock-start", "2024-11-29T12:58:00-05:00", "--clock-rate", "60"]
from sessionflow.cli import app
app.main()
"""


@pytest.mark.parametrize("command", ["backtest", "report", "demo", "live"])
def test_interrupt_with_a_stuck_consumer_names_the_thread_and_exits_3(
    tmp_path: Path, demo_store_path: Path, command: str
) -> None:
    store = tmp_path / "s.duckdb"
    if command in ("backtest", "report"):
        shutil.copy(demo_store_path, store)
    args = {
        "backtest": ["backtest", "--store", str(store), "--start", str(DEMO_START)],
        "report": ["report", "--store", str(store), "--start", str(DEMO_START)],
        "demo": ["demo", "--store", str(store)],
        "live": [str(store)],
    }[command]
    if command in ("backtest", "report"):
        args += ["--end", str(DEMO_START), "--symbols", ",".join(DEMO_SYMBOLS)]
    driver = tmp_path / "driver.py"
    driver.write_text(LIVE_DRIVER if command == "live" else DRIVER)
    thread = "sessionflow-live" if command == "live" else "sessionflow-coordinator"
    err = (tmp_path / "stderr").open("w+")
    root = str(Path(__file__).resolve().parent.parent)  # for tests.live_support
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, root])}
    proc = subprocess.Popen(
        [sys.executable, str(driver), *args],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env=env,
    )
    blocked = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.strip() == "BLOCKED":
                blocked.set()
        blocked.set()  # the process ended without blocking: fail at once, not after 60 s

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        blocked.wait(60)
        assert "BLOCKED\n" in lines, "".join(lines) + (tmp_path / "stderr").read_text()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    err.seek(0)
    stderr = err.read()
    assert code == 3, stderr
    assert "Traceback" not in stderr
    named = [line for line in stderr.splitlines() if thread in line]
    assert len(named) == 1, stderr
    assert named[0].startswith("error: thread(s) did not stop within")
    assert "sessionflow-upkeep" not in stderr
