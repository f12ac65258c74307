from datetime import UTC, datetime

import numpy as np
import pytest

from sessionflow.store import BarBatch, DuckDBStore

T0 = 1_732_113_000_000_000  # 2024-11-20 14:30Z


def batch(symbols: list[str | None], ts: list[int], close: float = 1.0) -> BarBatch:
    n = len(ts)
    return BarBatch(
        symbol=np.array(symbols, dtype=object),
        ts_us=np.array(ts, dtype=np.int64),
        open=np.full(n, close),
        high=np.full(n, close + 1),
        low=np.full(n, close - 0.5),
        close=np.full(n, close),
        volume=np.arange(n, dtype=np.int64) + 1,
    )


def test_upsert_twice_never_duplicates_and_replaces_values() -> None:
    store = DuckDBStore(":memory:")
    store.upsert_bars(batch(["A", "A", "B"], [T0, T0 + 60_000_000, T0]))
    store.upsert_bars(batch(["A", "A", "B"], [T0, T0 + 60_000_000, T0], close=2.0))
    assert store.count_bars() == 3
    loaded = store.load_bars(
        ["A", "B"], datetime(2024, 11, 20, tzinfo=UTC), datetime(2024, 11, 21, tzinfo=UTC)
    )
    assert loaded.close.tolist() == [2.0, 2.0, 2.0]
    assert list(loaded.symbol) == ["A", "B", "A"]  # ordered by (ts, symbol)


def test_failed_write_leaves_store_unchanged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.upsert_bars(batch(["A"], [T0]))
    with pytest.raises(Exception, match="NOT NULL"):
        store.upsert_bars(batch(["A", None], [T0 + 60_000_000, T0 + 120_000_000]))
    assert store.count_bars() == 1


def test_find_bars_returns_only_stored_minutes() -> None:
    store = DuckDBStore(":memory:")
    store.upsert_bars(batch(["A", "A"], [T0, T0 + 60_000_000]))
    found = store.find_bars([("A", T0 + 60_000_000), ("A", T0 + 120_000_000), ("B", T0)])
    assert found.ts_us.tolist() == [T0 + 60_000_000]


def test_reads_never_block_the_next_write_on_the_same_thread() -> None:
    store = DuckDBStore(":memory:")
    assert store.count_bars() == 0 and store.count_quotes() == 0
    store.upsert_bars(batch(["A"], [T0]))
    assert store.count_bars() == 1


def test_ticks_upsert_by_symbol_time_and_sequence() -> None:
    from sessionflow.models import Tick, from_us

    store = DuckDBStore(":memory:")
    t = from_us(T0)
    ticks = [Tick("A", t, 10.0, 5, 1), Tick("A", t, 10.1, 3, 2), Tick("B", t, 20.0, 1, 1)]
    assert store.upsert_ticks(ticks) == 3
    store.upsert_ticks([Tick("A", t, 10.2, 4, 2)])  # same print again, corrected
    got = store.load_ticks(["A", "B"], t, from_us(T0 + 1))
    assert got == [ticks[0], Tick("A", t, 10.2, 4, 2), ticks[2]]
