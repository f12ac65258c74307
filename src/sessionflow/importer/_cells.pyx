# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled readers of a bar CSV's cells: one pass over a block's bytes.

The numpy readers made 20-30 passes over (rows, width) byte matrices per block, which
was most of an import's time (issue 23, item 1); these read each cell once. The
grammar is the plain one described in :mod:`sessionflow.importer.columns`: what it
takes is what ``float``/``int``/``fromisoformat`` read, every other cell is left
unread for the per-row path, which gives the reason.
"""

from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

cdef double _P10F[19]
cdef int _k
for _k in range(19):
    _P10F[_k] = 10.0 ** _k

cdef int64_t _US_PER_DAY = 86_400_000_000
cdef int _MONTH_DAYS[13]
_MONTH_DAYS[:] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

cdef enum:
    UNREAD = 0
    ABSOLUTE = 1  # 'Z' or an offset: the instant is known
    WALL = 2  # no zone in the cell: a wall time, read only with a zone

KIND_UNREAD, KIND_ABSOLUTE, KIND_WALL = UNREAD, ABSOLUTE, WALL


cdef inline bint _number(const uint8_t* p, Py_ssize_t a, Py_ssize_t b, double* out) noexcept nogil:
    """Up to 15 digits with at most one '.' between two digits."""
    cdef Py_ssize_t n = b - a, i, dot = -1
    cdef int64_t v = 0
    cdef uint8_t c
    if n < 1 or n > 16:
        return False
    for i in range(a, b):
        c = p[i]
        if c == 46:
            if dot >= 0 or i == a or i == b - 1:
                return False
            dot = i
        elif c < 48 or c > 57:
            return False
        else:
            v = v * 10 + (c - 48)
    if dot < 0:
        if n > 15:
            return False
        out[0] = <double>v
    else:
        out[0] = <double>v / _P10F[b - 1 - dot]
    return True


cdef inline bint _integer(const uint8_t* p, Py_ssize_t a, Py_ssize_t b, int64_t limit,
                          int64_t* out) noexcept nogil:
    """1 to 19 ASCII digits below 9 * 10**18 and up to ``limit``."""
    cdef Py_ssize_t n = b - a, i
    cdef int64_t v = 0
    cdef uint8_t c
    if n < 1 or n > 19 or (n == 19 and p[a] > 56):
        return False
    for i in range(a, b):
        c = p[i]
        if c < 48 or c > 57:
            return False
        v = v * 10 + (c - 48)
    if v > limit:
        return False
    out[0] = v
    return True


cdef inline int _two(const uint8_t* q, int at) noexcept nogil:
    """Two digits at ``at`` as a number, or -1."""
    if q[at] < 48 or q[at] > 57 or q[at + 1] < 48 or q[at + 1] > 57:
        return -1
    return (q[at] - 48) * 10 + q[at + 1] - 48


cdef inline int64_t _days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 1970-01-01 of a date from 1970 on (H. Hinnant's algorithm)."""
    y -= m <= 2
    cdef int64_t era = y // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    cdef int64_t doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


cdef inline int _iso(const uint8_t* p, Py_ssize_t a, Py_ssize_t b, int64_t* out) noexcept nogil:
    """``YYYY-MM-DD[T ]HH:MM[:SS][Z|+HH:MM|-HH:MM]`` as microseconds: UNREAD, ABSOLUTE or
    WALL (the wall time as if it were UTC)."""
    cdef Py_ssize_t n = b - a
    cdef const uint8_t* q = p + a
    cdef int y1, y2, month, day, hour, minute, second = 0, oh, om, days_in
    if n != 16 and n != 19 and n != 20 and n != 25:
        return UNREAD
    if q[4] != 45 or q[7] != 45 or q[13] != 58 or (q[10] != 84 and q[10] != 32):
        return UNREAD
    y1 = _two(q, 0)
    y2 = _two(q, 2)
    month = _two(q, 5)
    day = _two(q, 8)
    hour = _two(q, 11)
    minute = _two(q, 14)
    if y1 < 0 or y2 < 0 or month < 0 or day < 0 or hour < 0 or minute < 0:
        return UNREAD
    if n >= 19:
        second = _two(q, 17)
        if q[16] != 58 or second < 0:
            return UNREAD
    cdef int64_t year = y1 * 100 + y2
    if year < 1970 or year >= 2100 or month < 1 or month > 12:
        return UNREAD
    days_in = _MONTH_DAYS[month]
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        days_in += 1
    if day < 1 or day > days_in or hour >= 24 or minute >= 60 or second >= 60:
        return UNREAD
    cdef int64_t us = _days_from_civil(year, month, day) * _US_PER_DAY
    us += ((hour * 60 + minute) * 60 + second) * <int64_t>1_000_000
    if n == 20:
        if q[19] != 90:
            return UNREAD
        out[0] = us
        return ABSOLUTE
    if n == 25:
        oh = _two(q, 20)
        om = _two(q, 23)
        if (q[19] != 43 and q[19] != 45) or q[22] != 58 or oh < 0 or om < 0:
            return UNREAD
        if oh >= 24 or om >= 60:
            return UNREAD
        us -= (-1 if q[19] == 45 else 1) * (oh * 60 + om) * <int64_t>60_000_000
        out[0] = us
        return ABSOLUTE
    out[0] = us
    return WALL


def numbers(const uint8_t[::1] raw, const int64_t[::1] start, const int64_t[::1] end,
            double[::1] out, uint8_t[::1] ok):
    """Plain decimal cells (spans into ``raw``) into ``out``; ``ok`` marks the ones read."""
    cdef Py_ssize_t i
    for i in range(start.shape[0]):
        ok[i] = _number(&raw[0], start[i], end[i], &out[i])
        if not ok[i]:
            out[i] = 0.0


def integers(const uint8_t[::1] raw, const int64_t[::1] start, const int64_t[::1] end,
             int64_t limit, int64_t[::1] out, uint8_t[::1] ok):
    """Plain integer cells up to ``limit`` into ``out``; ``ok`` marks the ones read."""
    cdef Py_ssize_t i
    for i in range(start.shape[0]):
        ok[i] = _integer(&raw[0], start[i], end[i], limit, &out[i])
        if not ok[i]:
            out[i] = 0


def iso_times(const uint8_t[::1] raw, const int64_t[::1] start, const int64_t[::1] end,
              int64_t[::1] out, uint8_t[::1] kind):
    """ISO-8601 cells into ``out`` (microseconds); ``kind`` is UNREAD, ABSOLUTE or WALL."""
    cdef Py_ssize_t i
    for i in range(start.shape[0]):
        out[i] = 0
        kind[i] = _iso(&raw[0], start[i], end[i], &out[i])


cdef inline int64_t _code(const uint8_t* p, Py_ssize_t a, Py_ssize_t b, int widest,
                          dict codes, list names):
    """The index of the cell's bytes in ``names`` (added if new), or -1 if empty or too long."""
    if b <= a or b - a > widest:
        return -1
    key = p[a:b]
    got = codes.get(key)
    if got is None:
        got = len(names)
        names.append(key)
        codes[key] = got
    return got


def symbol_codes(const uint8_t[::1] raw, const int64_t[::1] start, const int64_t[::1] end,
                 int widest, dict codes, list names, int64_t[::1] out):
    """Each cell's index in ``names`` (new spellings appended), -1 for an empty or long one."""
    cdef Py_ssize_t i
    for i in range(start.shape[0]):
        out[i] = _code(&raw[0], start[i], end[i], widest, codes, names)


def number_rows(const uint8_t[::1] raw, double[:, ::1] values, uint8_t[::1] plain):
    """Lines of exactly ``values.shape[1]`` plain decimal cells (LEAN rows): their values.

    ``plain`` marks the lines read; every other line (blank, another width, an odd cell)
    is left for the per-row path. Returns the number of lines (one per '\\n').
    """
    cdef Py_ssize_t n = raw.shape[0], width = values.shape[1], pos = 0, line = 0
    cdef Py_ssize_t i, cell, cell_start, stop, end
    cdef const uint8_t* p = &raw[0] if n else NULL
    cdef bint ok
    while pos < n:
        stop = pos
        while stop < n and p[stop] != 10:
            stop += 1
        end = stop - 1 if stop > pos and p[stop - 1] == 13 else stop
        ok = True
        cell = 0
        cell_start = pos
        for i in range(pos, end + 1):
            if i == end or p[i] == 44:
                if cell >= width or not _number(p, cell_start, i, &values[line, cell]):
                    ok = False
                    break
                cell += 1
                cell_start = i + 1
        plain[line] = ok and cell == width
        line += 1
        pos = stop + 1
    return line


def csv_block(const uint8_t[::1] raw, int width, const int64_t[::1] at, bint iso,
              Py_ssize_t max_line, int64_t volume_limit, int widest, dict codes, list names,
              int64_t[:, ::1] ints, double[:, ::1] prices, uint8_t[:, ::1] flags):
    """Split a block of whole lines into cells and read the common ones, one line a row.

    ``at``: the column of time, symbol (-1: none), open, high, low, close, volume and
    minutes (-1: none). Per line: ``ints`` holds the line's start and end (its '\\n'),
    the time cell's start and end, the time (``iso``), the volume and the symbol's code;
    ``prices`` open, high, low, close; ``flags`` whether every cell was read (a line of
    another width, or with a cell the grammar does not take, is 0) and the time's kind.
    Returns the number of lines, or -1 if one is longer than ``max_line`` with its '\\n'.
    """
    cdef Py_ssize_t n = raw.shape[0], pos = 0, line = 0, i, stop, end, cell
    cdef const uint8_t* p = &raw[0] if n else NULL
    cdef int64_t* bounds = <int64_t*>malloc((width + 1) * sizeof(int64_t))
    cdef int kind, j
    cdef bint ok
    cdef int64_t a, b
    if bounds == NULL:
        raise MemoryError()
    try:
        while pos < n:
            stop = pos
            while stop < n and p[stop] != 10:
                stop += 1
            if stop - pos + 1 > max_line:
                return -1
            end = stop - 1 if stop > pos and p[stop - 1] == 13 else stop
            ints[line, 0] = pos
            ints[line, 1] = stop
            cell = 0
            bounds[0] = pos
            for i in range(pos, end):
                if p[i] == 44:
                    cell += 1
                    if cell >= width:
                        break
                    bounds[cell] = i + 1
            ok = cell == width - 1
            flags[line, 0] = 0
            flags[line, 1] = UNREAD
            if ok:
                bounds[width] = end + 1  # every cell ends one byte before the next starts
                a, b = bounds[at[0]], bounds[at[0] + 1] - 1
                ints[line, 2] = a
                ints[line, 3] = b
                if iso:
                    kind = _iso(p, a, b, &ints[line, 4])
                    flags[line, 1] = kind
                    ok = kind != UNREAD
                for j in range(4):
                    ok = ok and _number(p, bounds[at[2 + j]], bounds[at[2 + j] + 1] - 1,
                                        &prices[line, j])
                ok = ok and _integer(p, bounds[at[6]], bounds[at[6] + 1] - 1, volume_limit,
                                     &ints[line, 5])
                if ok and at[7] >= 0:
                    a, b = bounds[at[7]], bounds[at[7] + 1] - 1
                    ok = p[a] == 49 and (b - a == 1 or (b - a == 3 and p[a + 1] == 46
                                                        and p[a + 2] == 48))
                if ok and at[1] >= 0:
                    ints[line, 6] = _code(p, bounds[at[1]], bounds[at[1] + 1] - 1, widest,
                                          codes, names)
                    ok = ints[line, 6] >= 0
                flags[line, 0] = ok
            line += 1
            pos = stop + 1
    finally:
        free(bounds)
    return line
