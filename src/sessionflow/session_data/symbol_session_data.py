"""Per-symbol view of the session: the seed's SymbolSessionData over the columnar grids.

Bars, derived bars, volume/high/low, quality and gaps are read from SessionData's
arrays (row ``index``); quotes, ticks, extended-hours bars and rejection counts
are per-symbol lists. Read under ``SessionData.lock`` or use :meth:`snapshot`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sessionflow.models import Bar, Quote, Tick
from sessionflow.session_data.grid import MINUTE_US, runs

if TYPE_CHECKING:
    from sessionflow.session_data.session_data import SessionData

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
    extended_quotes: tuple[Quote, ...]
    session_volume: int
    session_high: float | None
    session_low: float | None
    bar_quality: float
    expected_so_far: int
    gaps: tuple[tuple[int, int], ...]
    filled: int
    rejections: dict[str, int]
    historical_bars: dict[int, dict[date, tuple[Bar, ...]]]

    def bars(self, interval: int = 1, day: date | None = None) -> tuple[Bar, ...]:
        """This session's bars of ``interval``, or those of the trailing ``day``."""
        if day is not None:
            return self.historical_bars.get(interval, {}).get(day, ())
        return self.bars_1m if interval == 1 else self.bars_derived.get(interval, ())

    def to_pandas(self, interval: int = 1, day: date | None = None) -> Any:
        """:meth:`bars` as a pandas DataFrame (``frames.objects.BAR_SCHEMA``)."""
        from sessionflow.frames.backend import to_frame
        from sessionflow.frames.objects import bars_table

        return to_frame(bars_table(self.bars(interval, day)), "pandas")

    def to_polars(self, interval: int = 1, day: date | None = None) -> Any:
        """:meth:`bars` as a polars DataFrame."""
        from sessionflow.frames.backend import to_frame
        from sessionflow.frames.objects import bars_table

        return to_frame(bars_table(self.bars(interval, day)), "polars")


@dataclass
class SymbolSessionData:
    """Everything a strategy needs about one symbol in the running session."""

    owner: SessionData
    index: int
    symbol: str
    quotes: list[Quote] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    extended_bars: list[Bar] = field(default_factory=list)
    extended_quotes: list[Quote] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    corrected: int = 0  # bars replaced by a vendor correction (updatedBars)

    def reset(self) -> None:
        self.quotes, self.ticks, self.extended_bars, self.extended_quotes = [], [], [], []
        self.rejections = Counter()
        self.corrected = 0

    @property
    def bars_1m(self) -> list[Bar]:
        grid = self.owner.grid
        return grid.bars(self.index, self.symbol) if grid is not None else []

    @property
    def bars_derived(self) -> dict[int, list[Bar]]:
        return {k: g.bars(self.index, self.symbol) for k, g in sorted(self.owner.derived.items())}

    @property
    def session_volume(self) -> int:
        return int(self.owner.volume[self.index])

    @property
    def session_high(self) -> float | None:
        v = float(self.owner.high[self.index])
        return None if math.isnan(v) else v

    @property
    def session_low(self) -> float | None:
        v = float(self.owner.low[self.index])
        return None if math.isnan(v) else v

    @property
    def received(self) -> int:
        return int(self.owner.received[self.index])

    @property
    def filled(self) -> int:
        grid = self.owner.grid
        return int(grid.filled[:, self.index].sum()) if grid is not None else 0

    @property
    def bar_quality(self) -> float:
        return float(self.owner.quality[self.index])

    @property
    def expected_so_far(self) -> int:
        return self.owner.expected_so_far

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """Open gaps as [start, end) epoch-microsecond ranges."""
        grid = self.owner.grid
        if grid is None:
            return []
        _, starts, ends = runs(self.owner.gap_open[:, self.index : self.index + 1])
        base = grid.open_us
        return [
            (base + a * MINUTE_US, base + b * MINUTE_US)
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]

    @property
    def updated(self) -> set[str]:
        return {t for t, flags in self.owner.flags.items() if flags[self.index]}

    @property
    def historical_bars(self) -> dict[int, dict[date, list[Bar]]]:
        return {
            k: {d: g.bars(self.index, self.symbol) for d, g in sorted(days.items())}
            for k, days in sorted(self.owner.history.items())
        }

    def snapshot(self) -> SymbolSnapshot:
        session = self.owner.current_session
        return SymbolSnapshot(
            symbol=self.symbol,
            session=session.date if session else None,
            bars_1m=tuple(self.bars_1m),
            bars_derived={k: tuple(v) for k, v in self.bars_derived.items()},
            quotes=tuple(self.quotes),
            ticks=tuple(self.ticks),
            extended_bars=tuple(self.extended_bars),
            extended_quotes=tuple(self.extended_quotes),
            session_volume=self.session_volume,
            session_high=self.session_high,
            session_low=self.session_low,
            bar_quality=self.bar_quality,
            expected_so_far=self.expected_so_far,
            gaps=tuple(self.gaps),
            filled=self.filled,
            rejections=dict(sorted(self.rejections.items())),
            historical_bars={
                k: {d: tuple(b) for d, b in days.items()}
                for k, days in self.historical_bars.items()
            },
        )
