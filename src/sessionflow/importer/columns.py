"""Reading the common cells of a bar CSV in columns: times, prices, volumes, symbols.

Each function takes the block's bytes and the cells' spans (start, end) and returns
values for the cells it can read exactly (a plain grammar: ``2024-01-02T09:30:00-05:00``,
``101.25``, ``1500``) and a mask of the cells it could not. Those rows go through the
per-row checks in :mod:`sessionflow.importer.validate`, which give the reason and its
text, so a cell is never read two ways: what the plain grammar takes is what
``float``/``fromisoformat`` read. The grammar itself is compiled (``_cells.pyx``, one
pass per cell); these wrap it for spans and finish what needs Python (zones, symbol
normalisation). A decimal of at most 15 digits is an integer below
2**53 over a power of ten that a double holds exactly, so the one division is
correctly rounded: the same double as ``float(text)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.importer import _cells
from sessionflow.importer.validate import EPOCH_UNITS, localize
from sessionflow.models import MAX_TS_US, MAX_VOLUME, MIN_TS_US, SymbolError, normalize_symbol
from sessionflow.store.base import BOOL, F64, I64, OBJ

U8 = np.ndarray[Any, np.dtype[np.uint8]]

_US_PER_HOUR = 3_600_000_000


PAD = 32  # zero bytes before and after a block's bytes: a cell's matrix never leaves it


def padded(block: bytes) -> U8:
    """The block's bytes with PAD zero bytes on each side (spans into it start at PAD)."""
    out = np.zeros(len(block) + 2 * PAD, dtype=np.uint8)
    out[PAD : PAD + len(block)] = np.frombuffer(block, dtype=np.uint8)
    return out


def _matrix(raw: U8, start: I64, end: I64, width: int) -> U8:
    """The cells' bytes as a (rows, width) matrix, aligned left, padded with zeros.

    ``raw`` is :func:`padded`, so a cell of up to PAD bytes reads no byte outside it.
    """
    cols = np.arange(width)
    cells = raw[start[:, None] + cols]
    return np.where(cols < (end - start)[:, None], cells, np.uint8(0))


def plain_numbers(raw: U8, start: I64, end: I64) -> tuple[F64, BOOL]:
    """Cells of up to 15 digits with at most one inner '.', as float64; others marked unread."""
    out, ok = np.empty(len(start), dtype=np.float64), np.empty(len(start), dtype=np.uint8)
    _cells.numbers(raw, start, end, out, ok)
    return out, ok == 0


def plain_integers(raw: U8, start: I64, end: I64, limit: int = MAX_VOLUME) -> tuple[I64, BOOL]:
    """Cells of 1 to 19 ASCII digits up to ``limit`` (and 9 * 10**18), as int64; others
    are marked unread."""
    out, ok = np.empty(len(start), dtype=np.int64), np.empty(len(start), dtype=np.uint8)
    _cells.integers(raw, start, end, min(limit, 9 * 10**18), out, ok)
    return out, ok == 0


def iso_times(raw: U8, start: I64, end: I64, tz: ZoneInfo | None) -> tuple[I64, BOOL]:
    """ISO-8601 cells of the common layouts as epoch microseconds; others marked unread.

    Read here: ``YYYY-MM-DD``, ``T`` or a space, then ``HH:MM`` (a wall time) or
    ``HH:MM:SS`` followed by nothing (a wall time), ``Z`` or ``+HH:MM``/``-HH:MM``. A wall
    time is read only with ``tz``; without it the row goes to the per-row path, which
    stops the file with the message naming both readings.
    """
    us, kind = np.empty(len(start), dtype=np.int64), np.empty(len(start), dtype=np.uint8)
    _cells.iso_times(raw, start, end, us, kind)
    return zoned_times(us, kind, tz)


def zoned_times(us: I64, kind: U8, tz: ZoneInfo | None) -> tuple[I64, BOOL]:
    """The compiled reader's times (``kind`` per cell) as epoch microseconds, and unread.

    Wall times are converted with ``tz`` (unread without it); every time must fall in
    the store's range.
    """
    ok = kind != _cells.KIND_UNREAD
    wall = kind == _cells.KIND_WALL
    if wall.any():
        if tz is None:
            ok &= ~wall
        else:
            local = np.flatnonzero(wall)
            shifted, exact = _localize(us[local], tz)
            us[local] = shifted
            ok[local[~exact]] = False
    ok &= (us >= MIN_TS_US) & (us < MAX_TS_US)
    return us, ~ok


def _localize(wall_us: I64, tz: ZoneInfo) -> tuple[I64, BOOL]:
    """Wall times in ``tz`` to epoch microseconds, one zone lookup per hour of the block.

    An hour whose offset differs between its first and last minute (a DST switch inside
    it) is left to the per-row path (``exact`` False), which converts each time itself.
    """
    hours = wall_us // _US_PER_HOUR
    unique, inverse = np.unique(hours, return_inverse=True)
    offsets = np.zeros(len(unique), dtype=np.int64)
    steady = np.ones(len(unique), dtype=np.bool_)
    for i, h in enumerate(unique.tolist()):
        first_us, last_us = h * _US_PER_HOUR, h * _US_PER_HOUR + 59 * 60_000_000
        try:
            first = localize(first_us, tz) - first_us
            last = localize(last_us, tz) - last_us
        except (OverflowError, ValueError):
            steady[i] = False
            continue
        offsets[i], steady[i] = first, first == last
    return wall_us + offsets[inverse], steady[inverse]


def epoch_times(raw: U8, start: I64, end: I64, unit: str) -> tuple[I64, BOOL]:
    """Integer cells counting ``unit`` since 1970 as epoch microseconds; others unread."""
    n, unread = plain_integers(raw, start, end, limit=9 * 10**18)
    if unit == "ns":
        unread |= n % 1000 != 0
        us = n // 1000
    else:
        scale = EPOCH_UNITS[unit]
        unread |= n >= MAX_TS_US // scale + 1
        us = np.where(unread, 0, n) * scale
    unread |= (us < MIN_TS_US) | (us >= MAX_TS_US)
    return us, unread


def distinct(raw: U8, start: I64, end: I64, widest: int = PAD) -> tuple[list[bytes], I64, BOOL]:
    """The distinct cells (bytes), each cell's index among them, and cells too long to tell."""
    length = end - start
    width = max(1, min(int(length.max()) if len(start) else 1, widest))
    cells = _matrix(raw, start, np.minimum(end, start + width), width)
    keys = np.ascontiguousarray(cells).view(f"S{width}").ravel()
    names, inverse = np.unique(keys, return_inverse=True)
    return names.tolist(), inverse, (length > widest) | (length == 0)


def formatted_times(
    raw: U8, start: I64, end: I64, parse: Callable[[str], int | None]
) -> tuple[I64, BOOL]:
    """Times in a ``--format`` layout: ``parse`` once per distinct cell (a time is shared
    by every symbol of its minute); cells it refuses are marked unread."""
    names, inverse, unread = distinct(raw, start, end)
    us = np.zeros(len(names), dtype=np.int64)
    bad = np.zeros(len(names), dtype=np.bool_)
    for i, name in enumerate(names):
        try:
            got = parse(name.decode("utf-8"))
        except UnicodeDecodeError:
            got = None
        us[i], bad[i] = got or 0, got is None
    return us[inverse], bad[inverse] | unread


class Symbols:
    """Normalised symbols of a column, each distinct spelling checked once per file.

    ``codes`` and ``names`` are filled by the compiled reader (a spelling's index);
    :meth:`resolve` normalises the spellings it has not seen.
    """

    def __init__(self) -> None:
        self.codes: dict[bytes, int] = {}
        self.names: list[bytes] = []
        self._norm: list[str | None] = []

    def read(self, raw: U8, start: I64, end: I64) -> tuple[OBJ, BOOL]:
        """The normalised symbol per cell, and a mask of cells to check one by one."""
        code = np.empty(len(start), dtype=np.int64)
        _cells.symbol_codes(raw, start, end, PAD, self.codes, self.names, code)
        return self.resolve(code)

    def resolve(self, code: I64) -> tuple[OBJ, BOOL]:
        """Symbols of the compiled reader's codes (-1: a cell too long or empty), and a
        mask of the ones to check one by one."""
        for name in self.names[len(self._norm) :]:
            try:
                got: str | None = normalize_symbol(name.decode("utf-8"))
            except (SymbolError, UnicodeDecodeError):
                got = None
            self._norm.append(got)
        norm = np.array([*self._norm, None], dtype=object)  # code -1: the last, None
        names = norm[code]
        if len(self.names) > 100_000:  # a column of ever new spellings: start over
            self.codes.clear()
            self.names.clear()
            self._norm.clear()
        return names, np.asarray(names == None, dtype=np.bool_)  # noqa: E711 (per element)
