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


@pytest.mark.parametrize("command", ["backtest", "report", "demo"])
def test_interrupt_with_a_stuck_consumer_names_the_thread_and_exits_3(
    tmp_path: Path, demo_store_path: Path, command: str
) -> None:
    store = tmp_path / "s.duckdb"
    if command != "demo":
        shutil.copy(demo_store_path, store)
    args = {
        "backtest": ["backtest", "--store", str(store), "--start", str(DEMO_START)],
        "report": ["report", "--store", str(store), "--start", str(DEMO_START)],
        "demo": ["demo", "--store", str(store)],
    }[command]
    if command != "demo":
        args += ["--end", str(DEMO_START), "--symbols", ",".join(DEMO_SYMBOLS)]
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    err = (tmp_path / "stderr").open("w+")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
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
    named = [line for line in stderr.splitlines() if "sessionflow-coordinator" in line]
    assert len(named) == 1, stderr
    assert named[0].startswith("error: thread(s) did not stop within")
    assert "sessionflow-upkeep" not in stderr
