"""The columnar fast path gives the same results as feeding bars one at a time."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from sessionflow import BarEvent, DerivedBarEvent, Event, build_system
from sessionflow.data_upkeep import derive_bars
from sessionflow.events import BarSliceEvent, BatchEvent, DerivedSliceEvent, expand
from sessionflow.session_data import SessionData
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings


def test_batch_and_per_bar_consumers_see_the_same_bars_in_the_same_order(
    demo_store_path: Path,
) -> None:
    system = build_system(
        demo_settings(demo_store_path, start=date(2024, 11, 27), end=date(2024, 11, 29))
    )
    per_bar: list[Event] = []
    batches: list[BatchEvent] = []
    system.on_event(per_bar.append)
    system.on_batch(batches.append)
    system.run()
    assert [repr(e) for e in expand(batches)] == [repr(e) for e in per_bar]
    n_slices = sum(isinstance(e, BarSliceEvent) for e in batches)
    n_bars = sum(isinstance(e, BarEvent) for e in per_bar)
    assert n_slices < n_bars  # bars really travelled as slices
    assert sum(len(e.bars) for e in batches if isinstance(e, DerivedSliceEvent)) == sum(
        isinstance(e, DerivedBarEvent) for e in per_bar
    )


def test_columnar_session_equals_one_bar_at_a_time(
    demo_store_path: Path, calendar: ExchangeCalendar
) -> None:
    day = date(2024, 11, 29)
    session = calendar.session(day)
    system = build_system(demo_settings(demo_store_path, start=day, end=day))
    system.run()
    fast = system.data_manager.session_data.snapshots()

    store = DuckDBStore(demo_store_path, read_only=True)
    bars = list(store.load_bars(list(fast), session.open, session.close).iter_bars())
    store.close()
    slow = SessionData(list(fast))
    slow.start_session(session)
    for bar in bars:  # the per-bar path live feeds use
        assert slow.add_bars([bar]) == [bar]
    for symbol, snap in fast.items():
        ref = slow.snapshot(symbol)
        assert snap.bars_1m == ref.bars_1m
        assert (snap.session_volume, snap.session_high, snap.session_low) == (
            ref.session_volume,
            ref.session_high,
            ref.session_low,
        )
        for k in (5, 15):
            assert list(snap.bars_derived[k]) == derive_bars(list(ref.bars_1m), session, k)


def test_fast_instant_write_refuses_whole_slices_it_cannot_take(calendar: ExchangeCalendar) -> None:
    import numpy as np

    session = calendar.session(date(2024, 11, 29))
    sd = SessionData(["A", "B"])
    sd.start_session(session)
    open_us = sd.grid.open_us if sd.grid else 0
    rows = np.array([0, 1])
    one = (np.ones(2), np.full(2, 2.0), np.full(2, 0.5), np.ones(2), np.array([5, 7]))
    assert sd.write_instant(rows, open_us + 60_000_000, *one)
    assert not sd.write_instant(rows, open_us + 60_000_000, *one)  # duplicates
    assert not sd.write_instant(rows, open_us, *one)  # out of order
    assert not sd.write_instant(rows, open_us - 60_000_000, *one)  # before the open
    assert not sd.write_instant(np.array([0, 0]), open_us + 120_000_000, *one)  # symbol twice
    assert sd.snapshot("A").session_volume == 5 and sd.snapshot("B").session_volume == 7
    assert sd.snapshot("A").rejections == {}


def test_slice_rows_index_the_symbols(demo_store_path: Path) -> None:
    """Each slice says where its bars' symbols sit in data_manager.symbols (sorted), so a
    batch consumer can keep per-symbol arrays."""
    system = build_system(
        demo_settings(demo_store_path, start=date(2024, 11, 29), end=date(2024, 11, 29))
    )
    batches: list[BatchEvent] = []
    system.on_batch(batches.append)
    system.run()
    names = np.array(system.data_manager.symbols, dtype=object)
    assert list(names) == sorted(names)
    slices = [e for e in batches if isinstance(e, BarSliceEvent | DerivedSliceEvent)]
    assert {type(e) for e in slices} == {BarSliceEvent, DerivedSliceEvent}
    for ev in slices:
        assert ev.rows is not None
        assert ev.rows.dtype == np.intp
        assert list(names[ev.rows]) == ev.bars.symbol.tolist()


def test_replay_groups_checked_once_per_session() -> None:
    """A replay group is marked clean only if its bars are regular, have sane volumes and
    name each symbol once in ascending rows; the per-instant fast path trusts that mark."""
    from sessionflow.data_upkeep.prefetch import ReplayBars
    from sessionflow.models import MAX_VOLUME
    from sessionflow.store import BarBatch

    t = [0, 0, 60, 60, 120, 120, 180, 180, 240, 240]
    ts = np.array(t, dtype=np.int64) * 1_000_000
    rows = np.array([0, 1, 0, 1, 1, 1, 0, 1, 0, 1], dtype=np.intp)
    volume = np.array([1, 1, 1, 1, 1, 1, -1, 1, 1, MAX_VOLUME + 1], dtype=np.int64)
    regular = np.ones(10, dtype=np.bool_)
    regular[2] = False
    prices = np.full(10, 10.0)
    batch = BarBatch(
        np.array(["A", "B"] * 5, dtype=object), ts, prices, prices, prices, prices, volume,
        regular,
    )  # fmt: skip
    replay = ReplayBars.build(rows, batch)
    assert replay.groups == 5
    # clean; extended bar; symbol twice; negative volume; volume over the bound
    assert replay.clean.tolist() == [True, False, False, False, False]
