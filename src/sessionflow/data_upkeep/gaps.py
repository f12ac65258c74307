"""Gap detection: which expected regular-session minutes have no bar yet.

Expected minutes come from the calendar's session (390, or 210 on an early
close). Each minute is scanned once when it ends; open gaps are kept until they
are filled, so a check costs O(new minutes + open gaps), not O(session).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sessionflow.models import to_us
from sessionflow.time_provider import SessionInfo

_MIN = 60_000_000


def minute_ranges(minutes: Iterable[int]) -> list[tuple[int, int]]:
    """Collapse minute opens (epoch us) into [start, end) ranges."""
    out: list[tuple[int, int]] = []
    for m in sorted(minutes):
        if out and out[-1][1] == m:
            out[-1] = (out[-1][0], m + _MIN)
        else:
            out.append((m, m + _MIN))
    return out


class GapTracker:
    """Tracks missing minutes of one symbol in one session, and fill attempts per minute."""

    def __init__(self, session: SessionInfo) -> None:
        self._open = to_us(session.open)
        self._minutes = session.minutes
        self._scanned = 0
        self.open_gaps: dict[int, int] = {}  # minute open -> fill attempts so far

    def expected_so_far(self, now_us: int) -> int:
        return max(0, min(self._minutes, (now_us - self._open) // _MIN))

    def scan(self, now_us: int, present: Callable[[int], bool]) -> None:
        """Record every newly ended minute that has no bar."""
        upto = self.expected_so_far(now_us)
        for i in range(self._scanned, upto):
            ts = self._open + i * _MIN
            if not present(ts):
                self.open_gaps[ts] = 0
        self._scanned = max(self._scanned, upto)

    def due(self, max_attempts: int) -> list[int]:
        """Gaps to ask the source for now (each retried once per check, up to a limit)."""
        return [ts for ts, n in self.open_gaps.items() if n < max_attempts]

    def attempted(self, minutes: Iterable[int]) -> None:
        for ts in minutes:
            if ts in self.open_gaps:
                self.open_gaps[ts] += 1

    def filled(self, ts: int) -> None:
        self.open_gaps.pop(ts, None)
