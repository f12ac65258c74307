"""Duplicate and out-of-order minutes of one file, decided a chunk at a time.

A row is accepted when its minute is later than every minute accepted before it for
its symbol (so the accepted minutes of a symbol increase); a refused row is a
``duplicate`` if its minute was accepted before, else ``out_of_order``. The minutes
accepted so far are kept as runs of consecutive minutes (about one per session and
symbol), so the memory this needs grows with the gaps of a file, not with its rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sessionflow.store.base import BOOL, I64, OBJ

_MINUTE = 60_000_000


class _Runs:
    """One symbol's accepted minutes: sorted, disjoint runs [start, end] of whole minutes."""

    def __init__(self) -> None:
        self.starts: list[I64] = []
        self.ends: list[I64] = []
        self.last = -(1 << 62)
        self._flat: tuple[I64, I64] | None = None

    def add(self, us: I64) -> None:
        """Append increasing minutes, all later than ``last``."""
        breaks = np.flatnonzero(np.diff(us) != _MINUTE)
        starts = us[np.concatenate(([0], breaks + 1))]
        ends = us[np.concatenate((breaks, [len(us) - 1]))]
        if self.ends and self.ends[-1][-1] + _MINUTE == starts[0]:
            self.ends[-1] = self.ends[-1].copy()
            self.ends[-1][-1] = ends[0]
            starts, ends = starts[1:], ends[1:]
        if len(starts):
            self.starts.append(starts)
            self.ends.append(ends)
        self.last = int(us[-1])
        self._flat = None

    def has(self, us: int) -> bool:
        if self._flat is None:
            self._flat = (np.concatenate(self.starts or [np.zeros(0, np.int64)]),
                          np.concatenate(self.ends or [np.zeros(0, np.int64)]))  # fmt: skip
        starts, ends = self._flat
        i = int(np.searchsorted(starts, us, side="right")) - 1
        return i >= 0 and us <= int(ends[i]) and (us - int(starts[i])) % _MINUTE == 0


class Accepted:
    """Every symbol's accepted minutes in one file; :meth:`decide` takes a chunk in line order."""

    def __init__(self) -> None:
        self._runs: dict[str, _Runs] = {}

    def decide(self, symbols: OBJ, us: I64) -> tuple[BOOL, BOOL]:
        """(accepted, duplicate) per row; a row neither is ``out_of_order``."""
        n = len(us)
        accepted = np.ones(n, dtype=np.bool_)
        duplicate = np.zeros(n, dtype=np.bool_)
        if not n:
            return accepted, duplicate
        code, names = pd.factorize(symbols)
        order = np.argsort(code, kind="stable")
        code_s, us_s = code[order], us[order]
        group_start = np.flatnonzero(np.concatenate(([True], code_s[1:] != code_s[:-1])))
        bounds = np.append(group_start, n)
        for g, name in enumerate(names.tolist()):  # factorize's codes are 0..k-1
            runs = self._runs.setdefault(name, _Runs())
            rows = order[bounds[g] : bounds[g + 1]]
            times = us_s[bounds[g] : bounds[g + 1]]
            if times[0] <= runs.last or (len(times) > 1 and (np.diff(times) <= 0).any()):
                keep = self._one_by_one(runs, times, duplicate, rows)
                accepted[rows[~keep]] = False
                times = times[keep]
            if len(times):
                runs.add(times)
        return accepted, duplicate

    @staticmethod
    def _one_by_one(runs: _Runs, times: I64, duplicate: BOOL, rows: I64) -> BOOL:
        """The rows of a symbol whose chunk is not simply increasing, decided in order."""
        keep = np.zeros(len(times), dtype=np.bool_)
        last = runs.last
        here: set[int] = set()
        for i, t in enumerate(times.tolist()):
            if t > last:
                keep[i], last = True, t
                here.add(t)
            elif t in here or runs.has(t):
                duplicate[rows[i]] = True
        return keep
