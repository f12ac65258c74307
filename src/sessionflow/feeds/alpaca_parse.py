"""Alpaca v2 market-data messages (raw dicts) to sessionflow items, one message at a time.

Why parse raw dicts instead of the SDK's pydantic models: the SDK validates inside
its receive loop, so one bad message raises there and the rest of its frame is
lost silently. Here each message is checked on its own; a bad one raises
``Malformed`` for the feed to count, and its neighbours still arrive.

Each refusal carries a ``reason`` from the importer's vocabulary where one fits
(``volume_out_of_range``, ``time_out_of_range``, ``bad_symbol``, ...), so live and
import count the same problem under the same name. Sizes are bounded by
``MAX_VOLUME`` and times by ``MIN_TS_US``..``MAX_TS_US`` here, before anything is
built from them: msgpack carries uint64 volumes and timestamps past the year 9999.

Field names are Alpaca's: ``S`` symbol, ``t`` timestamp (a msgpack Timestamp, or an
RFC 3339 string in JSON mode); bars ``o h l c v`` with ``t`` the bar's open;
quotes ``bp bs ap as``; trades ``p s i``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgpack

from sessionflow.feeds.base import Correction, QuoteUpdate
from sessionflow.models import (
    MAX_TS_US,
    MAX_VOLUME,
    MIN_TS_US,
    Bar,
    SymbolError,
    Tick,
    from_us,
    normalize_symbol,
    price_problem,
    to_us,
)


class Malformed(ValueError):
    """One message that does not have the shape Alpaca documents; ``reason`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{detail} ({reason})")
        self.reason = reason


def _field(msg: Mapping[str, Any], key: str) -> Any:
    if key not in msg:
        raise Malformed("missing_field", f"missing field {key!r}")
    return msg[key]


def _price(msg: Mapping[str, Any], key: str) -> float:
    v = _field(msg, key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise Malformed("bad_number", f"field {key!r} is not a price: {v!r}")
    return float(v)


def _size(msg: Mapping[str, Any], key: str) -> int:
    v = _field(msg, key)
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise Malformed("bad_number", f"field {key!r} is not a size: {v!r}")
    if v > MAX_VOLUME:  # before int(): a float such as 1e300 would make a huge int
        raise Malformed("volume_out_of_range", f"field {key!r} is above {MAX_VOLUME:.0e}: {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise Malformed("bad_number", f"field {key!r} is not a whole size: {v!r}")
    return int(v)


def _symbol(msg: Mapping[str, Any]) -> str:
    s = _field(msg, "S")
    try:
        return _normalized(s) if isinstance(s, str) else normalize_symbol(s)
    except SymbolError as exc:
        raise Malformed("bad_symbol", f"field 'S' is not a symbol: {exc}") from None


@functools.lru_cache(maxsize=8192)
def _normalized(raw: str) -> str:
    """A feed repeats the same few thousand symbols: check each spelling once."""
    return normalize_symbol(raw)


def timestamp_us(value: Any) -> int:
    """Epoch microseconds from a msgpack Timestamp or an RFC 3339 string (nanoseconds cut)."""
    if isinstance(value, msgpack.Timestamp):
        us = int(value.to_unix_nano() // 1000)
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise Malformed("unparsable_time", f"bad timestamp {value!r}") from None
        if ts.tzinfo is None:
            raise Malformed("unparsable_time", f"timestamp without zone {value!r}")
        us = to_us(ts)
    else:
        raise Malformed("unparsable_time", f"bad timestamp {value!r}")
    if not MIN_TS_US <= us < MAX_TS_US:
        raise Malformed("time_out_of_range", f"timestamp {value!r} is outside 1970..2100")
    return us


def parse_bar(msg: Mapping[str, Any]) -> Bar:
    o, h, lo, c = (_price(msg, k) for k in ("o", "h", "l", "c"))
    if not lo <= min(o, c) <= max(o, c) <= h:
        reason = price_problem(o, h, lo, c, 0) or "inconsistent_ohlc"
        raise Malformed(reason, f"inconsistent OHLC {o}/{h}/{lo}/{c}")
    ts = from_us(timestamp_us(_field(msg, "t")))
    return Bar(_symbol(msg), ts, o, h, lo, c, _size(msg, "v"))


def parse_correction(msg: Mapping[str, Any]) -> Correction:
    """An ``updatedBars`` message ("u"): a bar recomputed after trades reported late."""
    return Correction(parse_bar(msg))


def parse_quote(msg: Mapping[str, Any]) -> QuoteUpdate:
    return QuoteUpdate(
        symbol=_symbol(msg),
        ts_us=timestamp_us(_field(msg, "t")),
        bid=_price(msg, "bp"),
        bid_size=_size(msg, "bs"),
        ask=_price(msg, "ap"),
        ask_size=_size(msg, "as"),
    )


def parse_trade(msg: Mapping[str, Any]) -> Tick:
    seq = msg.get("i", 0)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise Malformed("bad_number", f"field 'i' is not a trade id: {seq!r}")
    ts = from_us(timestamp_us(_field(msg, "t")))
    return Tick(_symbol(msg), ts, _price(msg, "p"), _size(msg, "s"), seq)
