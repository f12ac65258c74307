"""Gap detection: which expected regular-session minutes have no bar yet.

Expected minutes come from the calendar's session (390, or 210 on an early
close). Each minute column is scanned once when it ends, for all symbols at
once; open gaps stay marked in ``SessionData.gap_open`` until filled, and the
tracker counts fill attempts per (symbol, minute).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from sessionflow.models import to_us
from sessionflow.session_data import SessionData
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
    """Finds and tracks gaps of every symbol in one session. Call with the SessionData lock held."""

    def __init__(self, session: SessionInfo, n_symbols: int) -> None:
        self.open_us = to_us(session.open)
        self.minutes = session.minutes
        self._scanned = 0
        self.attempts = np.zeros((session.minutes, n_symbols), dtype=np.int32)

    def expected_so_far(self, now_us: int) -> int:
        return max(0, min(self.minutes, (now_us - self.open_us) // _MIN))

    def scan(self, now_us: int, sd: SessionData) -> int:
        """Mark every newly ended minute that has no bar as an open gap; returns the
        minutes expected so far."""
        assert sd.grid is not None
        upto = self.expected_so_far(now_us)
        done = self._scanned
        if upto > done:
            if upto == done + 1:  # the usual check: one minute ended, two row views
                np.logical_not(sd.grid.present[done], out=sd.gap_open[done])
            else:
                sd.gap_open[done:upto] = ~sd.grid.present[done:upto]
            self._scanned = upto
        return upto

    def due(
        self, sd: SessionData, max_attempts: int, now_us: int | None = None
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(symbol rows, minutes) of gaps to ask the fill source for now, in time order.

        With ``now_us``, minutes that a scan at ``now_us`` would mark are included
        without marking them, so the caller can query first and change state later.
        """
        minutes, rows = np.nonzero(sd.gap_open & (self.attempts < max_attempts))
        upto = self.scanned if now_us is None else self.expected_so_far(now_us)
        if upto > self.scanned:
            assert sd.grid is not None
            new = slice(self.scanned, upto)
            more_m, more_r = np.nonzero(~sd.grid.present[new] & (self.attempts[new] < max_attempts))
            minutes = np.concatenate((minutes, more_m + self.scanned))
            rows = np.concatenate((rows, more_r))
        return rows, minutes

    @property
    def scanned(self) -> int:
        """Minutes scanned so far; gap_open is only meaningful below this."""
        return self._scanned
