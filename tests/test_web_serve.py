"""``sessionflow serve`` as a user runs it: a real process, real HTTP and WebSocket clients."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from typer.testing import CliRunner
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sessionflow.cli.app import app
from tests.web_support import free_port

ROOT = Path(__file__).resolve().parent.parent
CLI = "from sessionflow.cli.app import main; main()"
WAIT = 60.0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONFLOW_", "APCA_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env | extra


class Served:
    """The child's stdout and stderr (uvicorn's logs), line by line, waited on with a timeout."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.base = f"http://127.0.0.1:{port}"
        self.q: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        assert proc.stdout is not None
        err = proc.stdout
        threading.Thread(target=self._pump, args=(err,), daemon=True).start()

    def _pump(self, out: IO[str]) -> None:
        for line in out:
            self.q.put(line)

    def until(self, pattern: str) -> re.Match[str]:
        while True:
            try:
                line = self.q.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {self.lines}") from None
            self.lines.append(line)
            if m := re.search(pattern, line):
                return m

    def get(self, path: str, token: str | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.base + path)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def rest(self) -> str:
        """Ctrl-C, then everything it printed."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(WAIT) == 0
        while not self.q.empty():
            self.lines.append(self.q.get())
        return "".join(self.lines)


@contextmanager
def serve(store: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    port = free_port()
    cmd = [sys.executable, "-c", CLI, "serve", "--store", str(store), "--port", str(port), *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env or _env()
    )
    try:
        served = Served(proc, port)
        served.until(r"Uvicorn running on")
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)


def test_any_other_host_gets_a_generated_token_printed_once_and_never_logged(
    demo_store_path: Path,
) -> None:
    with serve(demo_store_path, "--host", "0.0.0.0") as s:
        token = next(
            m[1] for line in s.lines if (m := re.search(r"token \(shown once\): (\S+)", line))
        )
        assert len(token) >= 32
        assert s.get("/api/symbols")[0] == 401
        assert s.get("/api/symbols", "wrong")[0] == 401
        status, body = s.get("/api/symbols", token)
        assert status == 200 and "SPY" in json.loads(body)["symbols"]
        status, page = s.get("/")
        assert status == 200 and token not in page
        ws_url = s.base.replace("http", "ws") + "/ws/events"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, open_timeout=WAIT).close()
        assert refused.value.response.status_code == 401
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert json.loads(ws.recv(timeout=WAIT))["type"] == "status"
        s.until(r'"GET /api/symbols HTTP/1.1" 200')  # the access log is on
        out = s.rest()
    assert out.count(token) == 1  # the line that shows it, nothing else
    assert "ERROR" not in out and '"WebSocket /ws/events" 401' in out


def test_a_token_from_the_environment_is_used_and_not_printed(demo_store_path: Path) -> None:
    token = "env-token-0123456789abcdef"
    with serve(demo_store_path, "--host", "0.0.0.0", env=_env(SESSIONFLOW_TOKEN=token)) as s:
        assert s.get("/api/system")[0] == 401
        assert s.get("/api/system", token)[0] == 200
        out = s.rest()
    assert token not in out and "shown once" not in out


def test_loopback_needs_no_token_answers_only_loopback_names_and_starts_a_backtest(
    demo_store_path: Path,
) -> None:
    args = ("--symbols", "spy", "--start", "2024-11-29", "--end", "2024-11-29", "--speed", "1")
    with serve(demo_store_path, *args) as s:
        status, body = s.get("/api/system")
        st = json.loads(body)
        assert status == 200 and st["state"] == "running" and st["symbols"] == ["SPY"]
        with socket.create_connection(("127.0.0.1", int(s.base.rsplit(":", 1)[1]))) as c:
            c.sendall(
                b"GET /api/system HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
            )
            assert c.recv(100).startswith(b"HTTP/1.1 400")
        out = s.rest()
    assert "token" not in out


def test_bad_serve_options_are_one_line_errors(demo_store_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["serve", *args], env={"SESSIONFLOW_TOKEN": None})
        return res.exit_code, res.stderr.strip()

    none = tmp_path / "none.duckdb"
    assert run("--store", str(none)) == (
        2,
        f"error: store {none} does not exist; run `sessionflow demo` or import",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run("--store", str(demo_store_path), "--port", str(port))
    assert busy == (2, f"error: --port {port}: cannot listen on 127.0.0.1:{port} (already in use)")
    bad = run("--store", str(demo_store_path), "--symbols", "SPY,ZZZZ", "--start", "2024-11-29",
              "--end", "2024-11-29", "--port", str(free_port()))  # fmt: skip
    assert bad == (2, "error: symbols not in the store: ZZZZ")
    assert run("--store", str(demo_store_path), "--port", "0")[1] == "error: --port 0: use 1..65535"


def test_a_token_http_cannot_carry_is_refused_at_launch(demo_store_path: Path) -> None:
    """Headers and cookies arrive as Latin-1 bytes: a non-ASCII token could never match."""
    res = CliRunner().invoke(
        app,
        ["serve", "--store", str(demo_store_path), "--host", "0.0.0.0", "--port", str(free_port())],
        env={"SESSIONFLOW_TOKEN": "tøken-é"},
    )
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: --token/SESSIONFLOW_TOKEN: use printable ASCII without spaces, quotes, "
        "commas, semicolons or backslashes (what an HTTP header and a cookie carry)"
    )
    assert "tøken" not in res.output


def test_a_short_token_is_refused_at_launch_without_echoing_it(demo_store_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["serve", "--store", str(demo_store_path), "--host", "0.0.0.0", "--port", str(free_port())],
        env={"SESSIONFLOW_TOKEN": "abc123"},
    )
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: --token/SESSIONFLOW_TOKEN: use at least 16 characters (a short token can be "
        "guessed); leave it out to have one generated"
    )
    assert "abc123" not in res.output


def test_a_host_this_machine_cannot_bind_names_the_host(demo_store_path: Path) -> None:
    port = str(free_port())
    for host, why in (("999.1.1.1", "not an address"), ("192.0.2.1", "not an address")):
        res = CliRunner().invoke(
            app, ["serve", "--store", str(demo_store_path), "--host", host, "--port", port,
                  "--token", "t0ken-for-the-test"],
        )  # fmt: skip
        assert res.exit_code == 2, res.output
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith(f"error: --host {host}: {why} of this machine ("), line


def test_a_token_given_in_a_query_is_refused_and_redacted_from_the_logs(
    demo_store_path: Path,
) -> None:
    """``?token=`` is no way in (401), and the access log held the token in clear."""
    token = "env-token-0123456789abcdef"
    with serve(demo_store_path, "--host", "0.0.0.0", env=_env(SESSIONFLOW_TOKEN=token)) as s:
        assert s.get(f"/api/symbols?token={token}")[0] == 401
        assert s.get(f"/api/bars/SPY?interval=5m&%74oken={token}")[0] == 401
        ws_url = s.base.replace("http", "ws") + f"/ws/events?token={token}"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, open_timeout=WAIT).close()
        assert refused.value.response.status_code == 401
        s.until(r'"GET /api/bars/SPY\?interval=5m&%74oken=\[redacted\] HTTP/1.1" 401')
        out = s.rest()
    assert token not in out
    assert '"GET /api/symbols?token=[redacted] HTTP/1.1" 401' in out
    assert '"WebSocket /ws/events?token=[redacted]" 401' in out
