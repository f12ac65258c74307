"""``sessionflow feed-server``: live mode tried offline, two real processes, no keys.

The server replays the demo store's bars of one session over the Alpaca protocol;
``sessionflow live`` runs against it with the URLs, keys and clock options the
server printed, and its report and store must equal the stored bars.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar

ROOT = Path(__file__).resolve().parent.parent
CLI = "from sessionflow.cli.app import main; main()"
WAIT = 60.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONFLOW_", "APCA_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def _free_pair() -> int:
    """A port N with N and N+1 free (websocket and REST)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two adjacent free ports")


class Lines:
    """A child's stdout, line by line, waited on with a timeout (no sleeps)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        out = proc.stdout
        threading.Thread(target=lambda: [self.q.put(x) for x in out], daemon=True).start()

    def until(self, pattern: str) -> re.Match[str]:
        while True:
            try:
                line = self.q.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {self.seen}") from None
            self.seen.append(line)
            if m := re.search(pattern, line):
                return m


def test_live_against_feed_server_gets_the_stored_bars(
    demo_store_path: Path, tmp_path: Path
) -> None:
    port = _free_pair()
    server = subprocess.Popen(
        [sys.executable, "-c", CLI, "feed-server", "--store", str(demo_store_path),
         "--symbols", "aapl,NVDA", "--session", "2024-11-29", "--from", "12:58",
         "--port", str(port), "--speed", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    try:
        lines = Lines(server)
        keys = lines.until(r"APCA_API_KEY_ID=(\S+) APCA_API_SECRET_KEY=(\S+)")
        command = lines.until(r"sessionflow (live .*)$")[1]
        args = shlex.split(command)
        assert f"ws://127.0.0.1:{port}/" in command and f"http://127.0.0.1:{port + 1}" in command
        assert args[args.index("--clock-start") + 1] == "2024-11-29T12:58:00-05:00"
        env = {**_env(), "APCA_API_KEY_ID": keys[1], "APCA_API_SECRET_KEY": keys[2]}
        live_store = tmp_path / "live.duckdb"
        live = subprocess.run(
            [sys.executable, "-c", CLI, *args, "--store", str(live_store), "--json"],
            capture_output=True, text=True, env=env, timeout=240,
        )  # fmt: skip
        assert live.returncode == 0, live.stderr
        lines.until(r"replayed \d+ bars")
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=WAIT)
    assert server.returncode == 0, err
    assert "Traceback" not in err

    out = json.loads(live.stdout)
    (session,) = out["sessions"]
    assert session["session"] == "2024-11-29" and session["early_close"]
    assert sum(h["feed_items"] for h in out["health"]) > 0  # bars came over the websocket
    info = ExchangeCalendar().session(datetime(2024, 11, 29).date())
    src = DuckDBStore(demo_store_path, read_only=True)
    got = DuckDBStore(live_store, read_only=True)
    try:
        want = src.load_bars(["AAPL", "NVDA"], info.open, info.close)
        have = got.load_bars(["AAPL", "NVDA"], info.open, info.close)
    finally:
        src.close()
        got.close()
    for row in session["rows"]:
        mine = want.symbol == row["symbol"]
        assert row["bars"] == int(mine.sum()), row
        assert row["volume"] == int(want.volume[mine].sum())
    nvda = next(r for r in session["rows"] if r["symbol"] == "NVDA")
    assert nvda["bars"] < nvda["expected"] == 210  # NVDA's stored gaps stay gaps
    for field in ("symbol", "ts_us", "open", "high", "low", "close", "volume"):
        assert getattr(have, field).tolist() == getattr(want, field).tolist(), field


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--session", "2024-11-28"], "2024-11-28 is not a XNYS trading session"),
        (["--symbols", "ZZZZ"], "ZZZZ"),
        (["--speed", "0"], "--speed"),
        (["--from", "25:00"], "--from"),
    ],
)
def test_feed_server_bad_options_are_one_line(
    demo_store_path: Path, args: list[str], needle: str
) -> None:
    base = {"--symbols": "AAPL", "--session": "2024-11-29"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    done = subprocess.run(
        [sys.executable, "-c", CLI, "feed-server", "--store", str(demo_store_path), *flat],
        capture_output=True, text=True, env=_env(), timeout=WAIT,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error:") and needle in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
