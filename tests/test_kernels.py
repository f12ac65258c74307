"""The compiled kernels (session_data/_kernels.pyx) against the numpy paths they replace.

The per-window reduction is pinned by test_properties (one window against the block
reduction); here: the fresh-instant write against the general write, the quality pass
against its numpy fallback, bad input refused before anything is written, and a pickled
grid's kernels working on the copy.
"""

from __future__ import annotations

import pickle
from datetime import date

import numpy as np
import numpy.typing as npt
import pytest

from sessionflow.session_data import SessionData
from sessionflow.session_data.grid import MINUTE_US, BarGrid, window
from sessionflow.time_provider import ExchangeCalendar

F64 = npt.NDArray[np.float64]
Instant = tuple[npt.NDArray[np.intp], tuple[F64, F64, F64, F64, npt.NDArray[np.int64]]]
FIELDS = ("open", "high", "low", "close", "volume", "present", "filled")
FIGURES = ("volume", "high", "low", "received", "last_slot", "gap_open")


def _instants(n_sym: int, n_min: int, seed: int) -> list[Instant]:
    """Per minute: ascending rows (some symbols missing) and their o, h, l, c, v."""
    rng = np.random.default_rng(seed)
    out: list[Instant] = []
    for _ in range(n_min):
        rows = np.flatnonzero(rng.random(n_sym) < 0.7).astype(np.intp)
        n = len(rows)
        lo = np.round(rng.uniform(1, 100, n), 2)
        hi = lo + np.round(rng.uniform(0, 3, n), 2)
        vol = rng.integers(0, 10**6, n).astype(np.int64)
        cols = (lo + 0.25, hi, lo, hi - 0.25, vol)
        out.append((rows, cols))
    return out


def test_the_compiled_instant_write_equals_the_general_write(calendar: ExchangeCalendar) -> None:
    session = calendar.session(date(2024, 11, 29))
    names = [f"S{i:02d}" for i in range(23)]
    fast, slow = SessionData(names), SessionData(names)
    fast.start_session(session)
    slow.start_session(session)
    fast.gap_open[:] = slow.gap_open[:] = True  # every minute marked open: writes clear them
    for m, (rows, cols) in enumerate(_instants(len(names), 40, 7)):
        ts = session.open_us + m * MINUTE_US
        assert fast.write_instant(rows, ts, *cols, checked=True)
        stamps = np.full(len(rows), ts, dtype=np.int64)
        assert slow.write_bars(rows, stamps, *cols).all()
    assert fast.grid is not None and slow.grid is not None
    for name in FIELDS:
        assert getattr(fast.grid, name).tobytes() == getattr(slow.grid, name).tobytes(), name
    for name in FIGURES:
        assert getattr(fast, name).tobytes() == getattr(slow, name).tobytes(), name
    assert fast.flags["bars"].tobytes() == slow.flags["bars"].tobytes()


def test_the_compiled_quality_equals_the_numpy_fallback(calendar: ExchangeCalendar) -> None:
    session = calendar.session(date(2024, 11, 29))
    sd = SessionData(["A", "B", "C", "D"])
    sd.start_session(session)
    table = 100.0 * np.arange(session.minutes + 1)[None, :] / np.arange(1, 8)[:, None]
    table.round(4, out=table)
    for expected, received in ((3, [0, 1, 2, 3]), (3, [0, 1, 3, 3]), (6, [1, 5, 6, 2])):
        sd.flags["quality"][:] = False
        before = sd.quality.copy()
        moved = expected != sd.expected_so_far
        sd.received[:] = received
        sd.rate(table[expected - 1], expected)
        want = np.round(100.0 * np.array(received) / expected, 4)
        assert sd.quality.tobytes() == want.tobytes()
        assert sd.expected_so_far == expected
        assert sd.flags["quality"].tolist() == (moved | (want != before)).tolist()
    sd.received[0] = session.minutes + 1  # beyond the row: refused, nothing written
    quality = sd.quality.copy()
    with pytest.raises(IndexError, match="beyond the quality table"):
        sd.rate(table[2], 3)
    assert sd.quality.tobytes() == quality.tobytes()


def test_bad_rows_are_refused_before_any_write() -> None:
    grid = BarGrid.empty(3, 10, 0, 1, 1)
    with pytest.raises(IndexError, match="outside the grid's 3 symbols"):
        window(grid, 5, 0, np.array([0, 3], dtype=np.intp))
    with pytest.raises(ValueError, match="outside the grid"):
        window(grid, 5, 2)
    o = np.ones(2)
    with pytest.raises(ValueError, match="one value per symbol"):
        grid.put_row(0, np.ones(2, dtype=np.bool_), o, o, o, o, np.ones(2, dtype=np.int64))
    assert not grid.present.any()


def test_a_pickled_grid_computes_on_its_own_arrays() -> None:
    grid = BarGrid.empty(3, 10, 0, 1, 1)
    copy = pickle.loads(pickle.dumps(grid))
    copy.present[2, 1], copy.high[2, 1], copy.volume[2, 1] = True, 5.0, 9
    has, _, h, _, _, v = window(copy, 5, 0)
    assert has.tolist() == [False, True, False] and h[1] == 5.0 and v.tolist() == [0, 9, 0]
    assert not window(grid, 5, 0)[0].any()
