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
    if not negative.any():
        return mag
    out: U64 = np.where(negative, (~mag) + np.uint64(1), mag)
    out[out == _MINUS_ONE] = _MINUS_TWO
    return out


def int_hash(x: npt.NDArray[np.int64]) -> U64:
    """``hash(int(v))`` for int64 values, as uint64 bit patterns."""
    if len(x) and x.min() >= 0 and x.max() < (1 << _BITS) - 1:
        return x.astype(np.uint64)  # the usual case (times, volumes): the value itself
    neg = x < 0
    mag = np.where(neg, -(x + 1), x).astype(np.uint64) + neg.astype(np.uint64)  # |x| safely
    return _signed(mag % _P, neg)


def float_hash(x: npt.NDArray[np.float64]) -> U64:
    """``hash(float(v))`` for finite float64 values, as uint64 bit patterns.

    From the IEEE bits: x = mant * 2**e with a 53-bit integer ``mant``, and
    ``mant * 2**e mod (2**61 - 1)`` is ``mant`` rotated left by ``e mod 61`` in 61 bits.
    """
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    exp = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    if (exp == 0x7FF).any():
        raise ValueError("float_hash needs finite values")
    frac = bits & np.uint64((1 << 52) - 1)
    normal = exp != 0
    mant = frac | (normal.astype(np.uint64) << np.uint64(52))
    s = ((np.maximum(exp, 1) - 1075) % _BITS).astype(np.uint64)
    rot = ((mant << s) & _P) | (mant >> (np.uint64(_BITS) - s))
    return _signed(rot, (bits >> np.uint64(63)).astype(np.bool_))


def tuple_hash(lanes: list[U64]) -> U64:
    """CPython's hash of tuples whose items hash to ``lanes`` (one array per position)."""
    acc = np.full(len(lanes[0]), _PRIME_5, dtype=np.uint64)
    tmp = np.empty_like(acc)
    for lane in lanes:
        np.multiply(lane, _PRIME_2, out=tmp)
        acc += tmp
        np.right_shift(acc, np.uint64(33), out=tmp)
        acc <<= np.uint64(31)
        acc |= tmp
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
    """``hash((ts_us, o, h, lo, c, v))`` per row, as ``Row.add`` computes it (the four
    prices hashed as one stacked array, the two ints as another: fewer numpy calls)."""
    prices = float_hash(np.stack((o, h, lo, c)).ravel()).reshape(4, -1)
    ints = int_hash(np.stack((ts_us, v)).ravel()).reshape(2, -1)
    return tuple_hash([ints[0], prices[0], prices[1], prices[2], prices[3], ints[1]])


def timing_hashes(
    ts_us: npt.NDArray[np.int64], minutes: npt.NDArray[np.int64], at_us: npt.NDArray[np.int64]
) -> U64:
    """``hash((ts_us, minutes, at_us))`` per row, as ``Row.deliver`` computes it."""
    return tuple_hash([int_hash(ts_us), int_hash(minutes), int_hash(at_us)])
