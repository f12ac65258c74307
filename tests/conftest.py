"""Shared fixtures: a real calendar, real DuckDB stores, and a helper that runs a backtest."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sessionflow.demo import build_demo_store
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.pg_support import PgServer, pg_server


def pytest_configure(config: pytest.Config) -> None:
    """Children must be able to receive Ctrl-C. A shell starts a background job (``make test
    &``, ``nohup``) with SIGINT ignored, and an ignored signal survives exec: every child the
    Ctrl-C tests start would then run to the end and exit 0. Python's own handler here makes
    the children start with the default again."""
    del config
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def calendar() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS")


@pytest.fixture(scope="session")
def demo_store_path(tmp_path_factory: pytest.TempPathFactory, calendar: ExchangeCalendar) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo_store(path, calendar).close()
    return path


@pytest.fixture
def demo_store(demo_store_path: Path) -> DuckDBStore:
    store = DuckDBStore(demo_store_path)
    yield store  # type: ignore[misc]
    store.close()


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """One real PostgreSQL server per test session (tests/pg_support.py)."""
    with pg_server() as server:
        yield server


@pytest.fixture
def pg_url(pg: PgServer) -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    url = pg.new_db()
    yield url
    pg.drop_db(url)


@pytest.fixture(params=["duckdb", "postgresql"])
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store name for each backend: a new DuckDB file, or a new PostgreSQL database."""
    if request.param == "duckdb":
        yield str(tmp_path / "store.duckdb")
        return
    server: PgServer = request.getfixturevalue("pg")
    url = server.new_db()
    yield url
    server.drop_db(url)


@pytest.fixture(autouse=True)
def _stop_live_runs(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every LiveRun a test builds is stopped after it, passed or failed: a failing live
    test must not leave a feed reconnecting to a closed server behind the later tests."""
    if not request.module.__name__.split(".")[-1].startswith("test_live"):
        yield
        return
    from tests import live_support

    runs: list[live_support.LiveRun] = []
    init = live_support.LiveRun.__init__

    def tracked(self: live_support.LiveRun, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        runs.append(self)

    monkeypatch.setattr(live_support.LiveRun, "__init__", tracked)
    yield
    for run in runs:
        run.system.stop()
