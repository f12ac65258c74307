"""Top-of-book updates folded into one-minute quote bars, the ``Quote`` model backtests replay.

Why fold: a ``Quote`` in sessionflow is a one-minute quote bar stamped at its open
and known at its close. Live quotes are instants, so publishing them raw would
give consumers a different type of data in live than in backtest. A bar closes
when its symbol's next update belongs to a later minute, or when the coordinator
says the minute has ended; an update for a minute already closed is counted late.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessionflow.feeds.base import QuoteUpdate
from sessionflow.models import Quote, from_us

_MIN_US = 60_000_000


@dataclass
class _Open:
    minute_us: int
    bid: list[float]  # open, high, low, close
    ask: list[float]
    bid_size: int
    ask_size: int

    def add(self, u: QuoteUpdate) -> None:
        for side, px in ((self.bid, u.bid), (self.ask, u.ask)):
            side[1], side[2], side[3] = max(side[1], px), min(side[2], px), px
        self.bid_size, self.ask_size = u.bid_size, u.ask_size

    def bar(self, symbol: str) -> Quote:
        b, a = self.bid, self.ask
        return Quote(
            symbol=symbol,
            ts=from_us(self.minute_us),
            bid_open=b[0],
            bid_high=b[1],
            bid_low=b[2],
            bid_close=b[3],
            bid_size=self.bid_size,
            ask_open=a[0],
            ask_high=a[1],
            ask_low=a[2],
            ask_close=a[3],
            ask_size=self.ask_size,
        )


class QuoteBarBuilder:
    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        self._closed_upto: dict[str, int] = {}  # symbol -> first minute still accepted
        self.late = 0

    def add(self, u: QuoteUpdate) -> list[Quote]:
        """Fold one update in; returns the bar it closed, if it started a new minute."""
        minute = u.ts_us - u.ts_us % _MIN_US
        if minute < self._closed_upto.get(u.symbol, minute):
            self.late += 1
            return []
        cur = self._open.get(u.symbol)
        if cur is not None and cur.minute_us == minute:
            cur.add(u)
            return []
        out = [self._close(u.symbol)] if cur is not None else []
        self._open[u.symbol] = _Open(minute, [u.bid] * 4, [u.ask] * 4, u.bid_size, u.ask_size)
        return out

    def close_ended(self, now_us: int) -> list[Quote]:
        """Close every bar whose minute ended at or before ``now_us``."""
        ended = [s for s, o in self._open.items() if o.minute_us + _MIN_US <= now_us]
        return [self._close(s) for s in sorted(ended)]

    def close_all(self) -> list[Quote]:
        return [self._close(s) for s in sorted(self._open)]

    def _close(self, symbol: str) -> Quote:
        o = self._open.pop(symbol)
        self._closed_upto[symbol] = o.minute_us + _MIN_US
        return o.bar(symbol)

    def next_close_us(self) -> int | None:
        return min((o.minute_us + _MIN_US for o in self._open.values()), default=None)
