"""Synthetic 1-minute bars: a seeded random walk per symbol over real calendar sessions.

The demo range 2024-11-20 .. 2024-12-05 spans the Thanksgiving holiday
(2024-11-28, no session) and the 13:00 ET early close on 2024-11-29. Symbols in
``GAPPY`` lose a share of their minutes, so their bar quality is below 100%.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt

from sessionflow.store import BarBatch
from sessionflow.time_provider import ExchangeCalendar

DEMO_SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY", "QQQ")
GAPPY = {"NVDA": 0.03, "QQQ": 0.01}
DEMO_START = date(2024, 11, 20)
DEMO_END = date(2024, 12, 5)
_BASE_PRICE = {"AAPL": 228.0, "MSFT": 415.0, "NVDA": 146.0, "SPY": 590.0, "QQQ": 505.0}


def demo_bars(calendar: ExchangeCalendar) -> BarBatch:
    """Exactly what ``sessionflow demo`` writes: same seed, same bars, every time."""
    return synthetic_bars(calendar, DEMO_SYMBOLS, DEMO_START, DEMO_END, GAPPY)


def synthetic_bars(
    calendar: ExchangeCalendar,
    symbols: Sequence[str],
    start: date,
    end: date,
    missing: dict[str, float] | None = None,
    seed: int = 20241129,
) -> BarBatch:
    """Bars for every regular minute of every session, minus ``missing`` fractions per symbol."""
    rng = np.random.default_rng(seed)
    minutes = np.concatenate([s.minute_opens_us() for s in calendar.sessions(start, end)])
    parts: list[BarBatch] = []
    for symbol in symbols:
        n = len(minutes)
        base = _BASE_PRICE.get(symbol, 50.0 + 10.0 * (sum(map(ord, symbol)) % 40))
        steps = rng.normal(0.0, 0.0006, n)
        close: npt.NDArray[np.float64] = np.round(base * np.exp(np.cumsum(steps)), 2)
        open_ = np.round(np.concatenate((np.array([base]), close[:-1])), 2)
        wiggle = np.abs(rng.normal(0.0, 0.0004, (2, n))) * close
        high = np.round(np.maximum(open_, close) + wiggle[0], 2)
        low = np.round(np.minimum(open_, close) - wiggle[1], 2)
        volume = rng.lognormal(8.0, 0.6, n).astype(np.int64) + 1
        keep = rng.random(n) >= (missing or {}).get(symbol, 0.0)
        parts.append(
            BarBatch(
                symbol=np.full(int(keep.sum()), symbol, dtype=object),
                ts_us=minutes[keep],
                open=open_[keep],
                high=high[keep],
                low=low[keep],
                close=close[keep],
                volume=volume[keep],
            )
        )
    return BarBatch(
        symbol=np.concatenate([p.symbol for p in parts]),
        ts_us=np.concatenate([p.ts_us for p in parts]),
        open=np.concatenate([p.open for p in parts]),
        high=np.concatenate([p.high for p in parts]),
        low=np.concatenate([p.low for p in parts]),
        close=np.concatenate([p.close for p in parts]),
        volume=np.concatenate([p.volume for p in parts]),
    )
