"""A PostgreSQL store that cannot be used is one line naming host:port and the reason.

The password never appears: not in errors, not in ``--json`` settings, and a URL that
carries one is refused before connecting (PGPASSWORD or ~/.pgpass instead).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.store import open_store
from sessionflow.store.errors import StorePasswordInUrl, StoreUnreachable
from sessionflow.store.postgres_probe import answers_as_postgres
from sessionflow.web import create_app
from tests.pg_support import SECRET_PASSWORD, SECRET_ROLE, PgServer

WRONG = "not-the-Password-42"
CONNECT_TIMEOUT_S = 10.0  # libpq connect_timeout in store.postgres_schema
HEADER = "timestamp,open,high,low,close,volume\n"


def cli(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args], env=env)
    return res.exit_code, res.stdout, res.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_no_server_at_the_address_is_one_line_naming_host_and_port() -> None:
    port = closed_port()
    url = f"postgresql://me@127.0.0.1:{port}/market"
    for args in (["store", "info"], ["backtest", "--symbols", "AAPL", "--start", "2024-11-25",
                 "--end", "2024-11-25"], ["import", "bars", "nothing.csv"]):  # fmt: skip
        code, out, err = cli(*args, "--store", url)
        assert code == 2, (args, out, err)
        (line,) = err.strip().splitlines()
        assert line.startswith("error: store postgresql://me@127.0.0.1")
        assert f"127.0.0.1:{port}: connection refused" in line, line


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """The probe's bytes are a bad request to it; the test output needs no access log."""


@contextlib.contextmanager
def http_server() -> Iterator[int]:
    """A real HTTP server on a free loopback port: it waits for a request line, as web
    servers do, so a PostgreSQL client's first packet gets no answer."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def chatty_server() -> Iterator[int]:
    """A TCP service that greets every connection at once and hangs up (SMTP, SSH style)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"220 mail.example ESMTP ready\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_a_port_that_is_not_postgresql_fails_fast_naming_it() -> None:
    """Before the 10 s connect timeout: one line, host:port, not PostgreSQL.

    The message tells the probe's answer from libpq's timeout; the bound is the timeout
    itself (the probe takes about 2 s of waiting), so a loaded machine does not fail it.
    """
    for server in (http_server, chatty_server):
        with server() as port:
            url = f"postgresql://me@127.0.0.1:{port}/market"
            started = time.monotonic()
            with pytest.raises(StoreUnreachable) as caught:
                open_store(url, read_only=True)
            took = time.monotonic() - started
            assert took < CONNECT_TIMEOUT_S, (server.__name__, took)
            line = str(caught.value)
            assert f"127.0.0.1:{port} did not answer as PostgreSQL" in line, line
            assert line.startswith(f"store {url}: ") and "\n" not in line
            code, _, err = cli("store", "info", "--store", url)
            assert code == 2
            (shown,) = err.strip().splitlines()
            assert shown == f"error: {line}"


def test_the_probe_knows_a_real_server_and_an_empty_port(pg: PgServer) -> None:
    """A slow open of a real server is never cut short; nothing listening is left to libpq."""
    assert answers_as_postgres("127.0.0.1", pg.port) is True
    assert answers_as_postgres("127.0.0.1", closed_port()) is None
    with http_server() as port:
        assert answers_as_postgres("127.0.0.1", port, timeout=0.2) is False


def test_login_refused_names_the_reason_never_the_password(pg: PgServer, tmp_path: Path) -> None:
    url = pg.new_db(owner=SECRET_ROLE)
    try:
        code, out, err = cli("store", "info", "--store", url, env={"PGPASSWORD": WRONG})
        assert code == 2
        assert (
            "refused the login" in err
            and f'password authentication failed for user "{SECRET_ROLE}"' in err
        )
        assert WRONG not in out + err
        code, out, err = cli("store", "info", "--store", url, env={"PGPASSWORD": ""})
        assert code == 2 and "refused the login" in err
        csv = tmp_path / "a.csv"
        csv.write_text(HEADER + "2024-11-29T09:30:00-05:00,1,2,0.5,1.5,10\n")
        good = {"PGPASSWORD": SECRET_PASSWORD}
        code, out, err = cli("import", "bars", csv, "--symbol", "AAPL", "--store", url, env=good)
        assert code == 0, err  # the same URL with the password from the environment
        code, out, err = cli("store", "info", "--store", url, "--json", env=good)
        assert code == 0 and json.loads(out)["rows"]["bars"] == 1
        assert SECRET_PASSWORD not in out + err
    finally:
        pg.drop_db(url)


def test_a_password_in_the_url_is_refused_and_never_echoed(pg: PgServer) -> None:
    url = pg.url("postgres", f"{SECRET_ROLE}:{SECRET_PASSWORD}")
    report = ["report", "--symbols", "A", "--start", "2024-11-25", "--store", url]
    for args in (["store", "info", "--store", url], report):
        code, out, err = cli(*args)
        assert code == 2 and "PGPASSWORD" in err, err
        assert SECRET_PASSWORD not in out + err


def test_json_settings_show_the_store_url_without_secrets(pg_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n2024-11-29T09:30:00-05:00,1,2,0.5,1.5,10\n"
    )
    assert cli("import", "bars", csv, "--symbol", "AAPL", "--store", pg_url)[0] == 0
    code, out, err = cli("backtest", "--symbols", "AAPL", "--start", "2024-11-29",
                         "--end", "2024-11-29", "--store", pg_url, "--json")  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    assert got["settings"]["store_path"] == pg_url
    assert got["sessions"][0]["rows"][0]["bars"] == 1


def test_the_demo_refuses_a_server_store() -> None:
    code, _, err = cli("demo", "--store", "postgresql://me@127.0.0.1:1/market")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "the demo builds its own DuckDB file" in line and "store copy" in line


def test_a_read_after_the_server_dropped_the_connection_reconnects(pg_url: str) -> None:
    """A long-running reader (serve, a backtest) outlives an idle kill or a server restart."""
    store = open_store(pg_url, read_only=False)
    try:
        assert store.symbols() == []
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert store.symbols() == []
    finally:
        store.close()


def test_the_dashboard_answers_a_lost_store_with_a_503_line(pg_url: str) -> None:
    """When the server is gone, the API says so in one line, not a 500 and a traceback."""
    pg_store = open_store(pg_url)
    pg_store.close()
    app = create_app(None, open_store(pg_url, read_only=True))
    with TestClient(app) as client:
        assert client.get("/api/symbols").status_code == 200
        server, name = pg_url.rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            admin.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            r = client.get("/api/symbols")
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert r.status_code == 503, r.text
    assert r.json()["detail"].startswith(f"store {pg_url}: ")


def test_reading_an_empty_database_says_how_to_fill_it(pg_url: str) -> None:
    """The demo refuses a server store, so its advice would lead nowhere here."""
    day = ["--start", "2024-11-25", "--end", "2024-11-25"]
    for args in (["store", "info"], ["report", "--symbols", "AAPL", *day]):
        code, _, err = cli(*args, "--store", pg_url)
        assert code == 2 and err.strip().splitlines() == [
            f"error: store {pg_url} holds no sessionflow data yet; import into it "
            f"(sessionflow import bars FILE --store URL) or copy a store into it "
            f"(sessionflow store copy FILE URL)"
        ], err


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:hunter2@127.0.0.1:1/market",
        "postgresql://me@127.0.0.1:1/market?password=hunter2",
        "postgresql://me@127.0.0.1:1/market?pass%77ord=hunter2",
        "postgres://me@127.0.0.1:1/market?sslmode=disable&%70assword=hunter2",
    ],
)
def test_a_password_in_the_url_is_refused_even_percent_encoded(url: str) -> None:
    """libpq decodes a URL's parameter names: ``pass%77ord`` is ``password`` to it."""
    code, out, err = cli("store", "info", "--store", url)
    assert code == 2 and "the URL carries a password" in err, err
    assert "hunter2" not in out + err
    with pytest.raises(StorePasswordInUrl):
        open_store(url)
