"""Per-symbol state for the current session. Not locked itself: SessionData holds the lock."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sessionflow.models import Bar, Quote, Tick, to_us
from sessionflow.time_provider import SessionInfo

DATA_TYPES = ("bars", "derived", "quotes", "ticks", "quality")


@dataclass(frozen=True)
class SymbolSnapshot:
    """An immutable, consistent copy of one symbol's session state."""

    symbol: str
    session: date | None
    bars_1m: tuple[Bar, ...]
    bars_derived: dict[int, tuple[Bar, ...]]
    quotes: tuple[Quote, ...]
    ticks: tuple[Tick, ...]
    extended_bars: tuple[Bar, ...]
    session_volume: int
    session_high: float | None
    session_low: float | None
    bar_quality: float
    expected_so_far: int
    gaps: tuple[tuple[int, int], ...]
    filled: int
    rejections: dict[str, int]
    historical_bars: dict[int, dict[date, tuple[Bar, ...]]]


@dataclass
class SymbolSessionData:
    """Everything a strategy needs about one symbol in the running session.

    ``bars_1m`` holds regular-session 1-minute bars in time order, gap-filled bars
    included (``Bar.filled``). Session volume/high/low count regular bars only.
    """

    symbol: str
    session: SessionInfo | None = None
    bars_1m: list[Bar] = field(default_factory=list)
    extended_bars: list[Bar] = field(default_factory=list)
    bars_derived: dict[int, list[Bar]] = field(default_factory=dict)
    quotes: list[Quote] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    session_volume: int = 0
    session_high: float | None = None
    session_low: float | None = None
    bar_quality: float = 0.0
    expected_so_far: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)
    filled: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    updated: set[str] = field(default_factory=set)
    historical_bars: dict[int, dict[date, list[Bar]]] = field(default_factory=dict)
    _minutes: set[int] = field(default_factory=set)
    _open_us: int = 0
    _close_us: int = 0

    def reset(self, session: SessionInfo) -> None:
        """Start a new session; historical bars survive, everything else is cleared."""
        self.session = session
        self.bars_1m, self.extended_bars, self.quotes, self.ticks = [], [], [], []
        self.bars_derived = {}
        self.session_volume, self.session_high, self.session_low = 0, None, None
        self.bar_quality, self.expected_so_far, self.filled = 0.0, 0, 0
        self.gaps = []
        self.rejections = Counter()
        self.updated = set()
        self._minutes = set()
        self._open_us, self._close_us = to_us(session.open), to_us(session.close)

    def add_bar(self, bar: Bar) -> str | None:
        """Store one bar; returns the rejection reason, or None when accepted."""
        ts = to_us(bar.ts)
        if ts % 60_000_000:
            return self._reject("not_minute_aligned")
        if not self._open_us <= ts < self._close_us:
            if not bar.regular and self.session is not None:
                self.extended_bars.append(bar)
                self.updated.add("bars")
                return None
            return self._reject("outside_session")
        if ts in self._minutes:
            return self._reject("duplicate")
        if self.bars_1m and not bar.filled and ts < to_us(self.bars_1m[-1].ts):
            return self._reject("out_of_order")
        self._minutes.add(ts)
        if self.bars_1m and ts < to_us(self.bars_1m[-1].ts):
            bisect.insort(self.bars_1m, bar, key=lambda b: b.ts)
        else:
            self.bars_1m.append(bar)
        if bar.filled:
            self.filled += 1
        self.session_volume += bar.volume
        self.session_high = (
            bar.high if self.session_high is None else max(self.session_high, bar.high)
        )
        self.session_low = bar.low if self.session_low is None else min(self.session_low, bar.low)
        self.updated.add("bars")
        return None

    def _reject(self, reason: str) -> str:
        self.rejections[reason] += 1
        return reason

    def has_minute(self, ts_us: int) -> bool:
        return ts_us in self._minutes

    @property
    def received(self) -> int:
        return len(self._minutes)

    def snapshot(self) -> SymbolSnapshot:
        return SymbolSnapshot(
            symbol=self.symbol,
            session=self.session.date if self.session else None,
            bars_1m=tuple(self.bars_1m),
            bars_derived={k: tuple(v) for k, v in sorted(self.bars_derived.items())},
            quotes=tuple(self.quotes),
            ticks=tuple(self.ticks),
            extended_bars=tuple(self.extended_bars),
            session_volume=self.session_volume,
            session_high=self.session_high,
            session_low=self.session_low,
            bar_quality=self.bar_quality,
            expected_so_far=self.expected_so_far,
            gaps=tuple(self.gaps),
            filled=self.filled,
            rejections=dict(sorted(self.rejections.items())),
            historical_bars={
                k: {d: tuple(b) for d, b in sorted(v.items())}
                for k, v in sorted(self.historical_bars.items())
            },
        )
