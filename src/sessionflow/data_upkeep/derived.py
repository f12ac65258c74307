"""Derived bars (5m, 15m, ...) built from 1-minute bars, aligned to the session open.

Window ``j`` of an ``k``-minute series covers session minutes [j*k, (j+1)*k); the
last window of a session whose length is not a multiple of ``k`` is shorter and
still emitted (``Bar.minutes`` says how long it is). Windows with no 1m bar at
all produce no derived bar.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from sessionflow.models import MINUTE, Bar
from sessionflow.time_provider import SessionInfo


def window_count(session: SessionInfo, interval: int) -> int:
    return -(-session.minutes // interval)


def completed_windows(session: SessionInfo, interval: int, now_us: int) -> int:
    """How many windows have ended at ``now_us`` (the last, short one ends at the close)."""
    elapsed = (now_us - session.open_us) // 60_000_000
    if elapsed >= session.minutes:
        return window_count(session, interval)
    return max(0, int(elapsed) // interval)


def aggregate_window(
    bars_1m: Sequence[Bar], session: SessionInfo, interval: int, index: int
) -> Bar | None:
    """The derived bar for window ``index`` from time-ordered 1m bars, or None if empty."""
    start = session.open + index * interval * MINUTE
    length = min(interval, session.minutes - index * interval)
    end = start + length * MINUTE
    lo = bisect.bisect_left(bars_1m, start, key=lambda b: b.ts)
    hi = bisect.bisect_left(bars_1m, end, key=lambda b: b.ts)
    if lo == hi:
        return None
    part = bars_1m[lo:hi]
    return Bar(
        symbol=part[0].symbol,
        ts=start,
        open=part[0].open,
        high=max(b.high for b in part),
        low=min(b.low for b in part),
        close=part[-1].close,
        volume=sum(b.volume for b in part),
        minutes=length,
    )


def derive_bars(bars_1m: Sequence[Bar], session: SessionInfo, interval: int) -> list[Bar]:
    """Every derived bar of a whole session (used for history and for tests)."""
    out = []
    for j in range(window_count(session, interval)):
        bar = aggregate_window(bars_1m, session, interval, j)
        if bar is not None:
            out.append(bar)
    return out
