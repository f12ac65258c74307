"""Columnar session storage: one [symbols x minutes] array per field.

A session's 1-minute bars live in fixed grids indexed by (symbol, minute of the
session), so writing all bars that share a timestamp is a handful of numpy
assignments, and derived bars, gaps and quality are column reductions. An
empty slot is ``present == False`` (prices NaN, volume 0). 42 bytes per slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sessionflow.models import Bar, from_us

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]
IDX = npt.NDArray[np.intp]

MINUTE_US = 60_000_000


@dataclass
class BarGrid:
    """OHLCV for ``n_sym`` symbols over ``n_slots`` consecutive ``minutes``-long slots."""

    open_us: int
    minutes: int
    last_minutes: int
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    present: BOOL
    filled: BOOL

    @classmethod
    def empty(cls, n_sym: int, n_slots: int, open_us: int, minutes: int, last: int) -> BarGrid:
        shape = (n_sym, n_slots)
        return cls(
            open_us,
            minutes,
            last,
            np.full(shape, np.nan),
            np.full(shape, np.nan),
            np.full(shape, np.nan),
            np.full(shape, np.nan),
            np.zeros(shape, dtype=np.int64),
            np.zeros(shape, dtype=np.bool_),
            np.zeros(shape, dtype=np.bool_),
        )

    @property
    def n_slots(self) -> int:
        return int(self.present.shape[1])

    def slot_ts_us(self, slot: int | IDX) -> int | I64:
        return self.open_us + np.asarray(slot, dtype=np.int64) * self.minutes * MINUTE_US

    def slot_minutes(self, slot: int) -> int:
        return self.last_minutes if slot == self.n_slots - 1 else self.minutes

    def put(self, rows: IDX, cols: IDX, o: F64, h: F64, lo: F64, c: F64, v: I64) -> None:
        self.open[rows, cols] = o
        self.high[rows, cols] = h
        self.low[rows, cols] = lo
        self.close[rows, cols] = c
        self.volume[rows, cols] = v
        self.present[rows, cols] = True

    def bars(self, row: int, symbol: str) -> list[Bar]:
        """One symbol's bars as objects (for snapshots and per-bar consumers)."""
        return [self.bar(row, int(j), symbol) for j in np.flatnonzero(self.present[row])]

    def bar(self, row: int, slot: int, symbol: str) -> Bar:
        return Bar(
            symbol=symbol,
            ts=from_us(int(self.slot_ts_us(slot))),
            open=float(self.open[row, slot]),
            high=float(self.high[row, slot]),
            low=float(self.low[row, slot]),
            close=float(self.close[row, slot]),
            volume=int(self.volume[row, slot]),
            minutes=self.slot_minutes(slot),
            filled=bool(self.filled[row, slot]),
        )

    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.open,
                self.high,
                self.low,
                self.close,
                self.volume,
                self.present,
                self.filled,
            )
        )


def aggregate(
    src: BarGrid, k: int, slots: IDX, rows: IDX | None = None
) -> tuple[BOOL, F64, F64, F64, F64, I64]:
    """Derived k-minute values of windows ``slots`` for ``rows`` (all symbols if None).

    Returns (any_present, open, high, low, close, volume), each [rows, windows].
    Open is the first present minute's open, close the last present minute's close.
    """
    r = np.arange(src.present.shape[0]) if rows is None else rows
    n_min = src.n_slots
    starts = slots * k
    shape = (len(r), len(slots))
    out_any = np.zeros(shape, dtype=np.bool_)
    out = [np.full(shape, np.nan) for _ in range(4)]
    vol = np.zeros(shape, dtype=np.int64)
    for w, a in enumerate(starts.tolist()):
        b = min(a + k, n_min)
        p = src.present[r, a:b]
        has = p.any(axis=1)
        out_any[:, w] = has
        if not has.any():
            continue
        first = p.argmax(axis=1)
        last = (b - a - 1) - p[:, ::-1].argmax(axis=1)
        idx = np.arange(len(r))
        out[0][:, w] = np.where(has, src.open[r, a:b][idx, first], np.nan)
        out[1][:, w] = np.where(p, src.high[r, a:b], -np.inf).max(axis=1)
        out[2][:, w] = np.where(p, src.low[r, a:b], np.inf).min(axis=1)
        out[3][:, w] = np.where(has, src.close[r, a:b][idx, last], np.nan)
        vol[:, w] = src.volume[r, a:b].sum(axis=1)
    return out_any, out[0], out[1], out[2], out[3], vol


def derive_grid(src: BarGrid, k: int) -> BarGrid:
    """The whole k-minute grid of a 1-minute grid (history and end-of-day use)."""
    n_win = -(-src.n_slots // k)
    last = src.n_slots - (n_win - 1) * k
    grid = BarGrid.empty(src.present.shape[0], n_win, src.open_us, k, last)
    if n_win == 0:
        return grid
    has, o, h, lo, c, v = aggregate(src, k, np.arange(n_win))
    grid.open[has], grid.high[has], grid.low[has], grid.close[has] = o[has], h[has], lo[has], c[has]
    grid.volume[has] = v[has]
    grid.present[:] = has
    return grid
