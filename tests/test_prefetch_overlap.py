"""The first session's store read overlaps the history load, on either store backend."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sessionflow import Event, build_system
from sessionflow.store import DuckDBStore, open_store
from tests.helpers import demo_settings, run_collect

DAYS = {"start": date(2024, 12, 2), "end": date(2024, 12, 3), "trailing_days": 2}
SYMBOLS = ["MSFT", "NVDA"]
SPAN = (datetime(2024, 11, 20, tzinfo=UTC), datetime(2024, 12, 5, tzinfo=UTC))


def meet_in_the_middle(store: Any) -> dict[str, bool]:
    """Make the session read and the history read each wait for the other to have begun.

    Run one after the other, the first waits its full timeout and reports False.
    """
    session_reading, history_reading = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}
    load_bar_rows, load_bars = store.load_bar_rows, store.load_bars

    def session_read(*args: Any, **kw: Any) -> Any:
        if "session" not in seen:
            session_reading.set()
            seen["session"] = history_reading.wait(5)
        return load_bar_rows(*args, **kw)

    def history_read(*args: Any, **kw: Any) -> Any:
        if "history" not in seen:
            history_reading.set()
            seen["history"] = session_reading.wait(5)
        return load_bars(*args, **kw)

    store.load_bar_rows, store.load_bars = session_read, history_read
    return seen


def test_first_session_read_runs_while_history_loads(demo_store_path: Path) -> None:
    plain, events = run_collect(demo_settings(demo_store_path, symbols=SYMBOLS, **DAYS))
    store = DuckDBStore(demo_store_path, read_only=True)
    seen = meet_in_the_middle(store)
    system, overlapped = run_collect(
        demo_settings(demo_store_path, symbols=SYMBOLS, **DAYS), store=store
    )
    store.close()
    assert seen == {"session": True, "history": True}
    assert [repr(e) for e in overlapped] == [repr(e) for e in events]
    assert system.data_manager.reports == plain.data_manager.reports


def test_overlap_works_on_postgresql_too(demo_store_path: Path, pg_url: str) -> None:
    """PostgreSQL gives each thread its own connection: the same overlap, the same events."""
    settings = demo_settings(demo_store_path, symbols=SYMBOLS, **DAYS)
    _, events = run_collect(settings)
    src = DuckDBStore(demo_store_path, read_only=True)
    dst = open_store(pg_url)
    dst.upsert_bars(src.load_bars(SYMBOLS, SPAN[0], SPAN[1]))
    src.close()
    seen = meet_in_the_middle(dst)
    system = build_system(settings, store=dst)
    on_pg: list[Event] = []
    system.on_event(on_pg.append)
    system.run()
    dst.close()
    assert seen == {"session": True, "history": True}
    assert [repr(e) for e in on_pg] == [repr(e) for e in events]
