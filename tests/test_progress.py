"""Progress as a user sees it, and Ctrl-C that keeps what completed.

The backtest runs as a real process with its stderr on a pseudo-terminal (so rich draws
its live progress as in a shell); the test reads that output and sends a real SIGINT
once the progress shows the second session running. No sleeps: every wait is on the
child's output or its exit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.demo import DEMO_END, DEMO_START, DEMO_SYMBOLS
from sessionflow.importer import ImportReport, bar_job, run_import
from sessionflow.importer.bars import CHUNK_ROWS
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar

runner = CliRunner()


def big_csv(path: Path, calendar: ExchangeCalendar, symbols: int) -> int:
    """``symbols`` x 390 good rows on 2024-11-27 (more than one chunk for 170+ symbols)."""
    (info,) = calendar.sessions(DEMO_START.replace(day=27), DEMO_START.replace(day=27))
    minutes = [info.open.timestamp() + 60 * i for i in range(info.minutes)]
    with path.open("w") as fh:
        fh.write("symbol,timestamp,open,high,low,close,volume\n")
        for s in range(symbols):
            for t in minutes:
                fh.write(f"S{s:03d},{int(t)},10,11,9,10.5,100\n")
    return symbols * len(minutes)


def test_import_reports_rows_per_chunk_through_a_callback(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    f = tmp_path / "big.csv"
    n = big_csv(f, calendar, 200)
    assert n > CHUNK_ROWS
    seen: list[tuple[int, int]] = []

    def on_progress(index: int, report: ImportReport) -> None:
        seen.append((index, report.rows))

    job = bar_job(f, calendar, epoch="s")
    db = DuckDBStore(tmp_path / "s.duckdb")
    try:
        result = run_import(db, [job], progress=on_progress)
    finally:
        db.close()
    assert result.committed
    rows = [r for _, r in seen]
    assert rows == sorted(rows) and len(set(rows)) >= 2  # at least two chunks, growing
    assert seen[-1] == (0, n)


def test_import_progress_on_a_terminal_and_none_with_json(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    f = tmp_path / "b.csv"
    n = big_csv(f, calendar, 3)
    store = tmp_path / "s.duckdb"
    code = ["-c", "from sessionflow.cli.app import main; main()"]
    args = [*code, "import", "bars", str(f), "--epoch", "s", "--store", str(store)]
    child = Child(args)
    shown = child.wait_for(f"{n:,} rows")
    assert child.finish() == 0
    err = child.err.decode(errors="replace")
    assert shown and "1/1 files" in err, err
    child = Child([*args, "--json"])
    assert child.finish() == 0
    assert child.err == b""  # the terminal stays quiet: JSON only, on stdout
    assert json.loads(child.out)[0]["unchanged"] == n
    res = runner.invoke(app, args[2:])  # stderr not a terminal (a log, a pipe): no progress
    assert res.exit_code == 0 and res.stderr == "", res.output


class Child:
    """A CLI process with stdout on a pipe and stderr on a pseudo-terminal, read as it goes."""

    def __init__(self, args: list[str]) -> None:
        master, slave = os.openpty()
        path = os.pathsep.join(sys.path)
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "PYTHONPATH": path}
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(slave)
        self.master = master
        self.err = b""
        self.out = b""
        self.changed = threading.Condition()
        self.ended = False
        self._threads = [
            threading.Thread(target=self._read_err, daemon=True),
            threading.Thread(target=self._read_out, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_err(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            with self.changed:
                if not chunk:
                    self.ended = True
                    self.changed.notify_all()
                    return
                self.err += chunk
                self.changed.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()

    def wait_for(self, text: str, timeout: float = 60) -> bool:
        with self.changed:
            return (
                self.changed.wait_for(lambda: text.encode() in self.err or self.ended, timeout)
                and text.encode() in self.err
            )

    def finish(self, timeout: float = 60) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for t in self._threads:
            t.join(10)
        os.close(self.master)
        return code


SIGNAL_DRIVER = """
import sys
from sessionflow.cli import app
from sessionflow.events import BarSliceEvent, SessionStartEvent

real = app.build_system

def build(*args, **kwargs):
    system = real(*args, **kwargs)
    session = []
    def started(ev):
        if isinstance(ev, SessionStartEvent):
            session[:] = [ev.session]
        elif isinstance(ev, BarSliceEvent) and session:  # the session's first bars are out
            print(f"started {session.pop()} ", file=sys.stderr, flush=True)
    system.on_batch(started)
    return system

app.build_system = build
sys.argv = ["sessionflow", *sys.argv[1:]]
app.main()
"""


@pytest.mark.parametrize(
    ("command", "as_json"), [("backtest", False), ("backtest", True), ("report", False)]
)
def test_ctrl_c_mid_run_prints_the_completed_sessions_and_the_partial_one(
    tmp_path: Path,
    demo_store_path: Path,
    calendar: ExchangeCalendar,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    as_json: bool,
) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, store)
    first, second = (s.date.isoformat() for s in calendar.sessions(DEMO_START, DEMO_END)[:2])
    args = [command, "--store", str(store), "--symbols", ",".join(DEMO_SYMBOLS)]
    args += ["--start", str(DEMO_START), "--end", str(DEMO_END)]
    if command == "backtest":
        args += ["--speed", "6000"]
    else:  # report has no --speed: the setting comes from the environment
        monkeypatch.setenv("SESSIONFLOW_SPEED", "6000")
    if as_json:  # --json shows no progress: a consumer added by a driver says when it runs
        driver = tmp_path / "driver.py"
        driver.write_text(SIGNAL_DRIVER)
        child = Child([str(driver), *args, "--json"])
    else:
        child = Child(["-c", "from sessionflow.cli.app import main; main()", *args])
    try:
        shown = child.wait_for(f"{second} ")  # the second session is running
        err = child.err.decode(errors="replace")
        assert shown, err
        if not as_json:
            assert "bars/s" in err and "ET" in err, err
        child.proc.send_signal(signal.SIGINT)
    finally:
        code = child.finish()
    err = child.err.decode(errors="replace")
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    if as_json:
        out = json.loads(child.out)
        assert out["interrupted"] is True
        sessions = out["sessions"]
        assert sessions[0]["session"] == first and "partial" not in sessions[0]
        assert sessions[-1]["partial"] is True and sessions[-1]["session"] >= second
        cut = datetime.fromisoformat(sessions[-1]["interrupted_at"])
        assert cut.date().isoformat() == sessions[-1]["session"] and cut.utcoffset() is not None
        assert sum(r["bars"] for r in sessions[-1]["rows"]) > 0
        return
    text = child.out.decode()
    assert first in text and second in text, text
    assert f"{second} partial" in err
    if command == "backtest":
        assert f"{second} (partial" in text, text


def test_ctrl_c_mid_import_writes_nothing_and_exits_130(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    f = tmp_path / "big.csv"
    big_csv(f, calendar, 1500)  # 585,000 rows, given 8 times: seconds of reading
    store = tmp_path / "s.duckdb"
    code_args = ["-c", "from sessionflow.cli.app import main; main()"]
    files = [str(f)] * 8  # a redraw can skip a chunk's count, and a file reads in under 1 s
    child = Child([*code_args, "import", "bars", *files, "--epoch", "s", "--store", str(store)])
    try:
        shown = child.wait_for("2/8 files")  # the first file is staged, six wait
        assert shown, child.err.decode(errors="replace")
        child.proc.send_signal(signal.SIGINT)
    finally:
        code = child.finish()
    err = child.err.decode(errors="replace")
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted: nothing was written" in err
    db = DuckDBStore(store)
    try:
        assert db._cursor().execute("SELECT count(*) FROM bars_1m").fetchone() == (0,)
    finally:
        db.close()
