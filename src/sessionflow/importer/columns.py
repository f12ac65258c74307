"""Vectorised reading of the common cells of a bar CSV: times, prices, volumes, symbols.

Each function takes the block's bytes and the cells' spans (start, end) and returns
values for the cells it can read exactly (a plain grammar: ``2024-01-02T09:30:00-05:00``,
``101.25``, ``1500``) and a mask of the cells it could not. Those rows go through the
per-row checks in :mod:`sessionflow.importer.validate`, which give the reason and its
text, so a cell is never read two ways: what the plain grammar takes is what
``float``/``fromisoformat`` read. A decimal of at most 15 digits is an integer below
2**53 over a power of ten that a double holds exactly, so the one division is
correctly rounded: the same double as ``float(text)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.importer.validate import EPOCH_UNITS, localize
from sessionflow.models import MAX_TS_US, MAX_VOLUME, MIN_TS_US, SymbolError, normalize_symbol
from sessionflow.store.base import BOOL, F64, I64, OBJ

U8 = np.ndarray[Any, np.dtype[np.uint8]]

_US_PER_DAY = 86_400_000_000
_US_PER_HOUR = 3_600_000_000
_POW10 = np.array([10**i for i in range(19)], dtype=np.int64)
_POW10F = np.array([10.0**i for i in range(19)], dtype=np.float64)


PAD = 32  # zero bytes before and after a block's bytes: a cell's matrix never leaves it


def padded(block: bytes) -> U8:
    """The block's bytes with PAD zero bytes on each side (spans into it start at PAD)."""
    out = np.zeros(len(block) + 2 * PAD, dtype=np.uint8)
    out[PAD : PAD + len(block)] = np.frombuffer(block, dtype=np.uint8)
    return out


def _matrix(raw: U8, start: I64, end: I64, width: int, right: bool, pad: int) -> U8:
    """The cells' bytes as a (rows, width) matrix, aligned left or right, padded with ``pad``.

    ``raw`` is :func:`padded`, so a cell of up to PAD bytes reads no byte outside it.
    """
    cols = np.arange(width)
    if right:
        cells = raw[end[:, None] - width + cols]
        return np.where(cols >= width - (end - start)[:, None], cells, np.uint8(pad))
    cells = raw[start[:, None] + cols]
    return np.where(cols < (end - start)[:, None], cells, np.uint8(pad))


def _digits(raw: U8, start: I64, end: I64, most: int, dot: bool) -> tuple[I64, I64, BOOL]:
    """(digits as an integer, digits after the '.', readable) of cells of at most ``most``
    digits and, with ``dot``, one '.' between two digits."""
    length = end - start
    width = min(int(length.max()) if len(length) else 1, most + int(dot))
    ok = (length >= 1) & (length <= width)
    m = _matrix(raw, start, end, max(width, 1), right=True, pad=48)  # leading zeros: same value
    is_dot = m == 46
    digit = (m >= 48) & (m <= 57)
    ok &= (digit | is_dot if dot else digit).all(axis=1) & digit[:, -1]
    w = m.shape[1]
    if dot:
        dots = is_dot.sum(axis=1)
        where = np.where(dots > 0, is_dot.argmax(axis=1), w)
        ok &= (dots <= 1) & (where > w - length)  # not the first byte
        scale = np.where(dots > 0, w - 1 - where, 0)
    else:
        scale = np.zeros(len(length), dtype=np.int64)
    ok &= length - (scale > 0) <= most
    if w >= 19:  # 19 digits fit an int64 below 9 * 10**18
        ok &= ~((length == 19) & (m[:, -19] > 56))
    # the digits with the '.' read as a 0, then that 0 taken out: one product for all rows
    value = np.where(digit, m - 48, 0).astype(np.int64) @ _POW10[w - 1 - np.arange(w)]
    if dot:
        below = _POW10[scale]
        value = np.where(scale > 0, value // (below * 10) * below + value % below, value)
    return np.where(ok, value, 0), scale, ok


def plain_numbers(raw: U8, start: I64, end: I64) -> tuple[F64, BOOL]:
    """Cells of up to 15 digits with at most one inner '.', as float64; others marked unread."""
    mant, scale, ok = _digits(raw, start, end, 15, dot=True)
    return mant / _POW10F[scale], ~ok


def plain_integers(raw: U8, start: I64, end: I64, limit: int = MAX_VOLUME) -> tuple[I64, BOOL]:
    """Cells of 1 to 19 ASCII digits up to ``limit`` (and 9 * 10**18), as int64; others
    are marked unread."""
    value, _, ok = _digits(raw, start, end, 19, dot=False)
    ok &= value <= limit
    return np.where(ok, value, 0), ~ok


def _days_from_civil(y: I64, m: I64, d: I64) -> I64:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146_097 + doe - 719_468, dtype=np.int64)


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def iso_times(raw: U8, start: I64, end: I64, tz: ZoneInfo | None) -> tuple[I64, BOOL]:
    """ISO-8601 cells of the common layouts as epoch microseconds; others marked unread.

    Read here: ``YYYY-MM-DD``, ``T`` or a space, then ``HH:MM`` (a wall time) or
    ``HH:MM:SS`` followed by nothing (a wall time), ``Z`` or ``+HH:MM``/``-HH:MM``. A wall
    time is read only with ``tz``; without it the row goes to the per-row path, which
    stops the file with the message naming both readings.
    """
    length = end - start
    m = _matrix(raw, start, end, 25, right=False, pad=0)
    b = [m[:, p].astype(np.int64) for p in range(25)]
    v = [x - 48 for x in b]

    def digits(*at: int) -> BOOL:
        out = np.ones(len(start), dtype=np.bool_)
        for p in at:
            out &= (b[p] >= 48) & (b[p] <= 57)
        return out

    seconds = length >= 19
    ok = np.isin(length, (16, 19, 20, 25)) & digits(0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15)
    ok &= (b[4] == 45) & (b[7] == 45) & (b[13] == 58) & ((b[10] == 84) | (b[10] == 32))
    ok &= ~seconds | ((b[16] == 58) & digits(17, 18))
    year = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3]
    month, day = v[5] * 10 + v[6], v[8] * 10 + v[9]
    hour, minute = v[11] * 10 + v[12], v[14] * 10 + v[15]
    second = np.where(seconds, v[17] * 10 + v[18], 0)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (year >= 1970) & (year < 2100) & (month >= 1) & (month <= 12)
    ok &= (day >= 1) & (day <= month_days) & (hour < 24) & (minute < 60) & (second < 60)
    us = _days_from_civil(year, month, day) * _US_PER_DAY
    us += ((hour * 60 + minute) * 60 + second) * 1_000_000
    zulu = length == 20
    ok &= ~zulu | (b[19] == 90)
    offset = length == 25
    if offset.any():
        sign, h1, h2, colon, m1, m2 = b[19:25]
        ok &= ~offset | (((sign == 43) | (sign == 45)) & (colon == 58))
        for x in (h1, h2, m1, m2):
            ok &= ~offset | ((x >= 48) & (x <= 57))
        oh, om = (h1 - 48) * 10 + h2 - 48, (m1 - 48) * 10 + m2 - 48
        ok &= ~offset | ((oh < 24) & (om < 60))
        us -= np.where(offset, np.where(sign == 45, -1, 1) * (oh * 60 + om) * 60_000_000, 0)
    wall = ok & ~offset & ~zulu
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
    cells = _matrix(raw, start, np.minimum(end, start + width), width, right=False, pad=0)
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
    """Normalised symbols of a column, each distinct spelling checked once per file."""

    def __init__(self) -> None:
        self._seen: dict[bytes, str | None] = {}

    def read(self, raw: U8, start: I64, end: I64) -> tuple[OBJ, BOOL]:
        """The normalised symbol per cell, and a mask of cells to check one by one."""
        names, inverse, unread = distinct(raw, start, end)
        norm = np.empty(len(names), dtype=object)
        bad = np.zeros(len(names), dtype=np.bool_)
        for i, name in enumerate(names):
            got = self._seen.get(name, "")
            if got == "":
                try:
                    got = normalize_symbol(name.decode("utf-8"))
                except (SymbolError, UnicodeDecodeError):
                    got = None
                if len(self._seen) < 100_000:
                    self._seen[name] = got
            norm[i], bad[i] = got, got is None
        return norm[inverse], bad[inverse] | unread
