"""Where the demo may write: a store it created itself, never one holding someone's data.

The demo creates the default store (marked ``created_by=demo`` in the store's
meta table) and may add to it later. A store created by anything else, or one
the meta table says a user has written to, is never written: without
``--store`` the demo uses ``demo.duckdb`` beside it and says so; with ``--store``
it stops (``StoreHasUserData``). Besides the mark, the bars themselves must be a
subset of the demo's bars (value for value), so a writer that forgot to set
the mark still cannot have its bars replaced. A store that already holds all
the demo bars is only read, so the demo runs next to other readers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sessionflow.demo.synthetic import demo_bars
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.store.errors import StoreHasUserData
from sessionflow.time_provider import ExchangeCalendar

DEMO_STORE_NAME = "demo.duckdb"
_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2300, 1, 1, tzinfo=UTC))


class DemoState(enum.Enum):
    MISSING = "missing"
    COMPLETE = "complete"  # every demo bar, nothing else: read only
    PARTIAL = "partial"  # the demo's own store, some demo bars missing: may add
    FOREIGN = "foreign"  # holds data the demo did not create: never written


@dataclass(frozen=True)
class DemoStore:
    """The store the demo ran on; ``note`` says why it is not the one asked for."""

    path: Path
    note: str | None = None
    wrote: bool = False


def _rows(batch: BarBatch) -> set[tuple[object, ...]]:
    cols = (batch.symbol, batch.ts_us, batch.open, batch.high, batch.low, batch.close)
    return set(zip(*(c.tolist() for c in (*cols, batch.volume, batch.regular)), strict=True))


def state_of(store: DuckDBStore, wanted: BarBatch) -> tuple[DemoState, str]:
    """What ``store`` holds compared with the demo bars ``wanted``, and why."""
    meta = store.meta
    if meta.get("created_by") != "demo":
        return DemoState.FOREIGN, f"created by {meta.get('created_by', 'unknown')}"
    if meta.get("user_data") == "true":
        return DemoState.FOREIGN, "other data was written to it after the demo"
    if store.count_quotes() or store.count_ticks():
        return DemoState.FOREIGN, "it holds quotes or ticks"
    count = store.count_bars()
    if count > len(wanted):
        return DemoState.FOREIGN, f"{count} bars, more than the demo's {len(wanted)}"
    held = _rows(store.load_bars(store.symbols(), *_ALL_TIME, regular_only=False))
    demo = _rows(wanted)
    if not held <= demo:
        return DemoState.FOREIGN, f"{len(held - demo)} bars differ from the demo's"
    return (DemoState.COMPLETE if held == demo else DemoState.PARTIAL), "demo data only"


def _fill(path: Path, wanted: BarBatch) -> bool:
    """Check again under the write lock, then write the demo bars; True if it wrote."""
    if path.exists():
        store = DuckDBStore(path, read_only=True)
        try:
            state, why = state_of(store, wanted)
        finally:
            store.close()
        if state is DemoState.FOREIGN:
            raise StoreHasUserData(path, why)
        if state is DemoState.COMPLETE:
            return False
    store = DuckDBStore(path, origin="demo")
    try:
        state, why = state_of(store, wanted)  # another process may have written meanwhile
        if state is DemoState.FOREIGN:
            raise StoreHasUserData(path, why)
        if state is not DemoState.COMPLETE:
            store.upsert_bars(wanted)
    finally:
        store.close()
    return state is not DemoState.COMPLETE


def prepare_demo_store(path: Path, calendar: ExchangeCalendar, explicit: bool) -> DemoStore:
    """Make sure a store with the demo bars exists without touching anyone's data.

    ``explicit``: the user named ``path`` (``--store``), so a store holding other
    data is an error rather than a reason to use ``demo.duckdb`` beside it.
    """
    wanted = demo_bars(calendar)
    try:
        return DemoStore(path, wrote=_fill(path, wanted))
    except StoreHasUserData:
        alt = path.with_name(DEMO_STORE_NAME)
        if explicit or alt == path:
            raise
    note = (
        f"note: {path} holds data the demo did not create and is left untouched; "
        f"the demo uses {alt} (backtest it with --store {alt})"
    )
    return DemoStore(alt, note, wrote=_fill(alt, wanted))


def build_demo_store(path: Path, calendar: ExchangeCalendar) -> DuckDBStore:
    """``path`` holding the demo bars, opened read-only; raises ``StoreHasUserData``."""
    prepare_demo_store(path, calendar, explicit=True)
    return DuckDBStore(path, read_only=True)
