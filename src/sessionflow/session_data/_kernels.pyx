# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled loops for the per-minute work on a grid's columns.

Each replaces a few dozen numpy calls on arrays of 10-500 elements, where the
calls' fixed cost, not the arithmetic, was the time. Results are bit for bit the
numpy ones: fmax/fmin keep numpy's rule (the first operand unless it is smaller
or the second is NaN), sums are int64, empty slots hold NaN prices and volume 0.
"""

from libc.math cimport isnan
from libc.stdint cimport int64_t, uint8_t


cdef inline double _fmax(double a, double b) noexcept nogil:
    return a if (a >= b or isnan(b)) else b


cdef inline double _fmin(double a, double b) noexcept nogil:
    return a if (a <= b or isnan(b)) else b


cdef class Columns:
    """Typed views of one grid's six [slot, symbol] arrays, taken once per grid."""

    cdef double[:, ::1] open
    cdef double[:, ::1] high
    cdef double[:, ::1] low
    cdef double[:, ::1] close
    cdef int64_t[:, ::1] volume
    cdef uint8_t[:, ::1] present
    cdef tuple arrays  # what it views, for pickling (a copy views the copied arrays)

    def __init__(self, open, high, low, close, volume, present):
        self.arrays = (open, high, low, close, volume, present)
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.present = present.view("u1")

    def __reduce__(self):
        return Columns, self.arrays


cdef class Figures:
    """Typed views of a session's per-symbol running figures and its gap marks."""

    cdef int64_t[::1] volume
    cdef double[::1] high
    cdef double[::1] low
    cdef int64_t[::1] received
    cdef int64_t[::1] last_slot
    cdef uint8_t[::1] bars
    cdef uint8_t[:, ::1] gap_open
    cdef double[::1] quality
    cdef uint8_t[::1] quality_flags

    cdef tuple arrays  # what it views, for pickling (a copy views the copied arrays)

    def __init__(
        self, volume, high, low, received, last_slot, bars, gap_open, quality, quality_flags
    ):
        self.arrays = (
            volume, high, low, received, last_slot, bars, gap_open, quality, quality_flags
        )
        self.volume = volume
        self.high = high
        self.low = low
        self.received = received
        self.last_slot = last_slot
        self.bars = bars.view("u1")
        self.gap_open = gap_open.view("u1")
        self.quality = quality
        self.quality_flags = quality_flags.view("u1")

    def __reduce__(self):
        return Figures, self.arrays


def rate(Figures figs, const double[:] table_row, bint all_changed):
    """Each symbol's quality ``table_row[received]``, its flag set where it changed
    (everywhere if ``all_changed``). A count beyond the row raises IndexError and
    writes nothing."""
    cdef Py_ssize_t n = figs.received.shape[0], i
    cdef int64_t got
    cdef double q
    if figs.quality.shape[0] != n or figs.quality_flags.shape[0] != n:
        raise ValueError("figures disagree on the symbols")
    for i in range(n):
        got = figs.received[i]
        if not 0 <= got < table_row.shape[0]:
            raise IndexError(f"{got} bars received, beyond the quality table")
    for i in range(n):
        q = table_row[figs.received[i]]
        if all_changed or q != figs.quality[i]:
            figs.quality_flags[i] = 1
        figs.quality[i] = q


def compact(
    const uint8_t[:] has,
    double[::1] o,
    double[::1] h,
    double[::1] lo,
    double[::1] c,
    int64_t[::1] v,
    Py_ssize_t[::1] rows,
):
    """Move the values of the symbols that have a bar to the front, in order, and
    their positions into ``rows``; returns how many there are."""
    cdef Py_ssize_t n = has.shape[0], i, m = 0
    if not (o.shape[0] == h.shape[0] == lo.shape[0] == c.shape[0] == v.shape[0]
            == rows.shape[0] == n):
        raise ValueError("one value per symbol expected")
    for i in range(n):
        if has[i]:
            o[m] = o[i]
            h[m] = h[i]
            lo[m] = lo[i]
            c[m] = c[i]
            v[m] = v[i]
            rows[m] = i
            m += 1
    return m


def put_row(
    Columns grid,
    Py_ssize_t slot,
    const uint8_t[:] has,
    const double[:] o,
    const double[:] h,
    const double[:] lo,
    const double[:] c,
    const int64_t[:] v,
):
    """Overwrite every symbol's values at ``slot`` (presence from ``has``)."""
    cdef Py_ssize_t n = grid.present.shape[1], r
    if not 0 <= slot < grid.present.shape[0]:
        raise IndexError(f"slot {slot} outside the grid")
    if not (has.shape[0] == o.shape[0] == h.shape[0] == lo.shape[0] == c.shape[0]
            == v.shape[0] == n):
        raise ValueError("one value per symbol expected")
    for r in range(n):
        grid.open[slot, r] = o[r]
        grid.high[slot, r] = h[r]
        grid.low[slot, r] = lo[r]
        grid.close[slot, r] = c[r]
        grid.volume[slot, r] = v[r]
        grid.present[slot, r] = has[r]


def write_fresh(
    Columns grid,
    Figures figs,
    const Py_ssize_t[:] rows,
    Py_ssize_t slot,
    const double[:] o,
    const double[:] h,
    const double[:] lo,
    const double[:] c,
    const int64_t[:] v,
):
    """One instant's bars into ``slot``, which holds none yet, ``rows`` each once:
    the six slot values, the open gap cleared, and each symbol's session volume,
    high (fmax), low (fmin), count, last slot and bars flag."""
    cdef Py_ssize_t n = rows.shape[0], n_sym = grid.present.shape[1], i, r
    if not 0 <= slot < grid.present.shape[0] or slot >= figs.gap_open.shape[0]:
        raise IndexError(f"slot {slot} outside the grid")
    if not (o.shape[0] == h.shape[0] == lo.shape[0] == c.shape[0] == v.shape[0] == n):
        raise ValueError("one value per row expected")
    if figs.volume.shape[0] != n_sym or figs.gap_open.shape[1] != n_sym:
        raise ValueError("figures and grid disagree on the symbols")
    for i in range(n):
        if not 0 <= rows[i] < n_sym:
            raise IndexError(f"row {rows[i]} outside the grid's {n_sym} symbols")
    if n == 0:
        return
    # the slot's and the figures' rows as pointers, taken once
    cdef double *go = &grid.open[slot, 0]
    cdef double *gh = &grid.high[slot, 0]
    cdef double *gl = &grid.low[slot, 0]
    cdef double *gc = &grid.close[slot, 0]
    cdef int64_t *gv = &grid.volume[slot, 0]
    cdef uint8_t *gp = &grid.present[slot, 0]
    cdef uint8_t *gap = &figs.gap_open[slot, 0]
    cdef int64_t *fv = &figs.volume[0]
    cdef double *fh = &figs.high[0]
    cdef double *fl = &figs.low[0]
    cdef int64_t *fr = &figs.received[0]
    cdef int64_t *fs = &figs.last_slot[0]
    cdef uint8_t *fb = &figs.bars[0]
    for i in range(n):
        r = rows[i]
        go[r] = o[i]
        gh[r] = h[i]
        gl[r] = lo[i]
        gc[r] = c[i]
        gv[r] = v[i]
        gp[r] = 1
        gap[r] = 0
        fv[r] += v[i]
        fh[r] = _fmax(fh[r], h[i])
        fl[r] = _fmin(fl[r], lo[i])
        fr[r] += 1
        fs[r] = slot
        fb[r] = 1


def window(
    Columns src,
    Py_ssize_t a,
    Py_ssize_t b,
    rows,
    double[::1] o,
    double[::1] h,
    double[::1] lo,
    double[::1] c,
    int64_t[::1] v,
    uint8_t[::1] has,
):
    """Reduce slots ``a:b`` per symbol (``rows``, or every symbol if None) into the
    outputs; returns how many symbols have a present slot. Slot-major, like the
    grid, so each pass reads one contiguous row."""
    cdef double[:, ::1] opens = src.open, highs = src.high, lows = src.low
    cdef double[:, ::1] closes = src.close
    cdef int64_t[:, ::1] vols = src.volume
    cdef uint8_t[:, ::1] pres = src.present
    cdef const Py_ssize_t[:] sel
    cdef Py_ssize_t n, i, r, m
    cdef Py_ssize_t count = 0
    cdef bint all_rows = rows is None
    if not 0 <= a < b <= pres.shape[0]:
        raise ValueError(f"window slots {a}:{b} outside the grid's {pres.shape[0]}")
    if all_rows:
        n = pres.shape[1]
    else:
        sel = rows
        n = sel.shape[0]
        for i in range(n):
            if not 0 <= sel[i] < pres.shape[1]:
                raise IndexError(f"row {sel[i]} outside the grid's {pres.shape[1]} symbols")
    if not (o.shape[0] == h.shape[0] == lo.shape[0] == c.shape[0] == v.shape[0]
            == has.shape[0] == n):
        raise ValueError("window outputs must have one value per symbol")
    for i in range(n):
        r = i if all_rows else sel[i]
        h[i] = highs[a, r]
        lo[i] = lows[a, r]
        v[i] = vols[a, r]
        has[i] = pres[a, r]
        # no present slot: the window's own first/last slot, an empty slot's NaN
        o[i] = opens[a, r]
        c[i] = closes[a if pres[a, r] else b - 1, r]
    cdef double *hp = &h[0] if n else NULL
    cdef double *lp = &lo[0] if n else NULL
    cdef int64_t *vp = &v[0] if n else NULL
    cdef double *xh
    cdef double *xl
    cdef int64_t *xv
    for m in range(a + 1, b):
        if all_rows:  # contiguous rows: simple loops the compiler vectorises
            xh = &highs[m, 0]
            xl = &lows[m, 0]
            xv = &vols[m, 0]
            for i in range(n):
                hp[i] = _fmax(hp[i], xh[i])
            for i in range(n):
                lp[i] = _fmin(lp[i], xl[i])
            for i in range(n):
                vp[i] += xv[i]
        else:
            for i in range(n):
                r = sel[i]
                hp[i] = _fmax(hp[i], highs[m, r])
                lp[i] = _fmin(lp[i], lows[m, r])
                vp[i] += vols[m, r]
        for i in range(n):
            r = i if all_rows else sel[i]
            if pres[m, r]:
                if not has[i]:
                    has[i] = 1
                    o[i] = opens[m, r]
                c[i] = closes[m, r]
    for i in range(n):
        count += has[i]
    return count
