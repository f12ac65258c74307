"""Alpaca v2 market-data messages (raw dicts) to sessionflow items, one message at a time.

Why parse raw dicts instead of the SDK's pydantic models: the SDK validates inside
its receive loop, so one bad message raises there and the rest of its frame is
lost silently. Here each message is checked on its own; a bad one raises
``Malformed`` for the feed to count, and its neighbours still arrive.

Field names are Alpaca's: ``S`` symbol, ``t`` timestamp (a msgpack Timestamp, or an
RFC 3339 string in JSON mode); bars ``o h l c v`` with ``t`` the bar's open;
quotes ``bp bs ap as``; trades ``p s i``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgpack

from sessionflow.feeds.base import QuoteUpdate
from sessionflow.models import Bar, Tick, from_us, to_us


class Malformed(ValueError):
    """One message that does not have the shape Alpaca documents."""


def _field(msg: Mapping[str, Any], key: str) -> Any:
    if key not in msg:
        raise Malformed(f"missing field {key!r}")
    return msg[key]


def _price(msg: Mapping[str, Any], key: str) -> float:
    v = _field(msg, key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise Malformed(f"field {key!r} is not a price: {v!r}")
    return float(v)


def _size(msg: Mapping[str, Any], key: str) -> int:
    v = _field(msg, key)
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise Malformed(f"field {key!r} is not a size: {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise Malformed(f"field {key!r} is not a whole size: {v!r}")
    return int(v)


def _symbol(msg: Mapping[str, Any]) -> str:
    s = _field(msg, "S")
    if not isinstance(s, str) or not s:
        raise Malformed(f"field 'S' is not a symbol: {s!r}")
    return s


def timestamp_us(value: Any) -> int:
    """Epoch microseconds from a msgpack Timestamp or an RFC 3339 string (nanoseconds cut)."""
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano() // 1000)
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError as exc:
            raise Malformed(f"bad timestamp {value!r}") from exc
        if ts.tzinfo is None:
            raise Malformed(f"timestamp without zone {value!r}")
        return to_us(ts)
    raise Malformed(f"bad timestamp {value!r}")


def parse_bar(msg: Mapping[str, Any]) -> Bar:
    o, h, lo, c = (_price(msg, k) for k in ("o", "h", "l", "c"))
    if not lo <= min(o, c) <= max(o, c) <= h:
        raise Malformed(f"inconsistent OHLC {o}/{h}/{lo}/{c}")
    ts = from_us(timestamp_us(_field(msg, "t")))
    return Bar(_symbol(msg), ts, o, h, lo, c, _size(msg, "v"))


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
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise Malformed(f"field 'i' is not a trade id: {seq!r}")
    ts = from_us(timestamp_us(_field(msg, "t")))
    return Tick(_symbol(msg), ts, _price(msg, "p"), _size(msg, "s"), seq)
