"""``hash((ts_us, open, high, low, close, volume))`` for whole columns at once.

``Row.add`` checksums each delivered bar with Python's tuple hash. A columnar consumer
that calls it per bar spends most of its time there, so the batch consumer computes
the same 64-bit values with numpy instead: CPython's int and float hashes are the
value modulo the Mersenne prime 2**61 - 1 (for a float m * 2**e, a 61-bit rotation of
the integer mantissa), and its tuple hash is the xxHash-style mix in
``Objects/tupleobject.c``. ``tests/test_bench_compare.py`` checks the result equals
``hash(tuple)`` bar for bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    U64 = npt.NDArray[np.uint64]

_BITS = 61
_P = np.uint64((1 << _BITS) - 1)
_PRIME_1 = np.uint64(11400714785074694791)
_PRIME_2 = np.uint64(14029467366897019727)
_PRIME_5 = np.uint64(2870177450012600261)
_MINUS_ONE = np.uint64((1 << 64) - 1)
_MINUS_TWO = np.uint64((1 << 64) - 2)


def _signed(mag: U64, negative: npt.NDArray[np.bool_]) -> U64:
    """``-mag`` where negative (two's complement), and -1 turned into -2 as CPython does."""
    out: U64 = np.where(negative, (~mag) + np.uint64(1), mag)
    out[out == _MINUS_ONE] = _MINUS_TWO
    return out


def int_hash(x: npt.NDArray[np.int64]) -> U64:
    """``hash(int(v))`` for int64 values, as uint64 bit patterns."""
    neg = x < 0
    mag = np.where(neg, -(x + 1), x).astype(np.uint64) + neg.astype(np.uint64)  # |x| safely
    return _signed(mag % _P, neg)


def float_hash(x: npt.NDArray[np.float64]) -> U64:
    """``hash(float(v))`` for finite float64 values, as uint64 bit patterns."""
    if not np.isfinite(x).all():
        raise ValueError("float_hash needs finite values")
    m, e = np.frexp(np.abs(x))
    mant = np.ldexp(m, 53).astype(np.uint64)  # exact: x = mant * 2**(e - 53)
    s = ((e.astype(np.int64) - 53) % _BITS).astype(np.uint64)
    rot = ((mant << s) & _P) | (mant >> (np.uint64(_BITS) - s))
    return _signed(rot, x < 0)


def tuple_hash(lanes: list[U64]) -> U64:
    """CPython's hash of tuples whose items hash to ``lanes`` (one array per position)."""
    acc = np.full(len(lanes[0]), _PRIME_5, dtype=np.uint64)
    for lane in lanes:
        acc += lane * _PRIME_2
        acc = (acc << np.uint64(31)) | (acc >> np.uint64(33))
        acc *= _PRIME_1
    acc += np.uint64(len(lanes) ^ (2870177450012600261 ^ 3527539))
    acc[acc == _MINUS_ONE] = np.uint64(1546275796)
    return acc


def bar_hashes(
    ts_us: npt.NDArray[np.int64],
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    v: npt.NDArray[np.int64],
) -> U64:
    """``hash((ts_us, o, h, lo, c, v))`` per row, as ``Row.add`` computes it."""
    return tuple_hash(
        [int_hash(ts_us), float_hash(o), float_hash(h), float_hash(lo), float_hash(c), int_hash(v)]
    )
