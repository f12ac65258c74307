"""Shared fixtures: a real calendar, real DuckDB stores, and a helper that runs a backtest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sessionflow.demo import build_demo_store
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar


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
