"""Market-data records shared by every component.

Timestamp convention (the only one used anywhere in sessionflow): ``ts`` is a
timezone-aware UTC ``datetime`` and, for a bar, it is the bar's *open*. A 1-minute
bar stamped 14:30:00Z covers [14:30:00, 14:31:00) and becomes known when that
interval ends, so replay delivers it at ``ts + 1 minute`` (``available_at``).
Quotes here are one-minute quote bars (bid/ask OHLC) and follow the same rule;
ticks are instants and are available at ``ts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)  # built once: to_us runs once per bar on consumer paths


@lru_cache(maxsize=4096)
def to_us(ts: datetime) -> int:
    """Microseconds since the epoch for a tz-aware datetime (exact, no float).

    Memoised (a pure function): per-bar consumers convert every bar's ``ts``, and the
    bars of one instant share one datetime whose hash Python caches, so a hit costs a
    third of the timedelta division. Naive datetimes raise (never cached).
    """
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: sessionflow needs tz-aware timestamps")
    return (ts - _EPOCH) // _US


def from_us(us: int) -> datetime:
    """Inverse of :func:`to_us`, always UTC (a multiple of ``_US``: half the cost of
    ``timedelta(microseconds=...)``, once per replay step)."""
    return _EPOCH + _US * int(us)


class Bar(NamedTuple):
    """An OHLCV bar; ``ts`` is its open, ``minutes`` its length.

    A NamedTuple rather than a frozen dataclass: equally immutable, and built about
    four times faster, which matters on the per-bar consumer path.
    """

    symbol: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    minutes: int = 1
    filled: bool = False
    regular: bool = True

    @property
    def available_at(self) -> datetime:
        return self.ts + self.minutes * MINUTE


@dataclass(frozen=True, slots=True)
class Quote:
    """A one-minute quote bar: bid and ask OHLC with the last sizes seen."""

    symbol: str
    ts: datetime
    bid_open: float
    bid_high: float
    bid_low: float
    bid_close: float
    bid_size: int
    ask_open: float
    ask_high: float
    ask_low: float
    ask_close: float
    ask_size: int
    regular: bool = True

    @property
    def available_at(self) -> datetime:
        return self.ts + MINUTE


@dataclass(frozen=True, slots=True)
class Tick:
    """A trade print; available at its own timestamp."""

    symbol: str
    ts: datetime
    price: float
    size: int
    seq: int = 0

    @property
    def available_at(self) -> datetime:
        return self.ts


# Bounds on what a vendor may send. A bar above MAX_VOLUME is rejected so that no sum
# sessionflow keeps can wrap int64: 90,000 bars (a 960-minute extended session for
# 90 days) at the bound stay below 2**63 (9.2e18). Real minute volumes are below 1e10.
MAX_VOLUME = 10**14
MAX_PRICE = 1e9  # per share; the dearest listed share trades near 1e6
# The cheapest sub-penny share quotes 0.0001; 1e-300 is no price, and divided into
# anything (a return, an adjustment) it overflows. Positive prices below this are refused.
MIN_PRICE = 1e-6
# Timestamps sessionflow accepts: 1970-01-01 .. 2100-01-01 UTC (exchange calendars,
# numpy int64 microseconds and DuckDB all hold this range exactly).
MIN_TS_US = 0
MAX_TS_US = 4_102_444_800_000_000


def price_problem(o: float, h: float, lo: float, c: float, v: float) -> str | None:
    """Why an OHLCV row is impossible (importer and live writes share the reasons), or None."""
    if not all(math.isfinite(x) for x in (o, h, lo, c, v)):
        return "nan_or_inf"
    if min(o, h, lo, c) <= 0:
        return "non_positive_price"
    if max(o, h, lo, c) > MAX_PRICE or min(o, h, lo, c) < MIN_PRICE:
        return "price_out_of_range"
    if h < lo:
        return "high_below_low"
    if h < max(o, c):
        return "high_below_open_close"
    if lo > min(o, c):
        return "low_above_open_close"
    if v < 0:
        return "negative_volume"
    if v > MAX_VOLUME:
        return "volume_out_of_range"
    return None


class SymbolError(ValueError):
    """A symbol that cannot be used; the message says which and why."""


def normalize_symbol(raw: object) -> str:
    """The one spelling of a symbol wherever it enters (CLI, files, LEAN folders, live, API).

    Surrounding whitespace is stripped and letters upper-cased; an empty symbol or one
    with a comma, inner whitespace or a control character is refused with the reason.
    """
    if not isinstance(raw, str):
        raise SymbolError(f"symbol {raw!r} is not text")
    sym = raw.strip().upper()
    if not sym:
        raise SymbolError(f"symbol {raw!r} is empty")
    for ch in sym:
        if ch == ",":
            raise SymbolError(f"symbol {raw!r} contains a comma")
        if ch.isspace():
            raise SymbolError(f"symbol {raw!r} contains whitespace")
        if not ch.isprintable():
            raise SymbolError(f"symbol {raw!r} contains a control character")
    return sym
