"""Cutting a backtest into shards: groups of symbols times ranges of sessions.

Symbols never interact in a replay (gaps, fills, derived bars, quality and history
are per symbol), so a symbol group is a complete system on its own. A session range
other than the first starts like any backtest does: it loads its trailing history
from the store before its first session, which is what the single process has
rolled into history by then. Shards are ordered (symbols, then sessions) so the plan
and the merge are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sessionflow.time_provider import SessionInfo

MAX_SYMBOLS_PER_SHARD = 500  # a shard's grids grow with its symbols; 500 keep it near 100 MB
SESSIONS_PER_SHARD = 60  # a date shard re-reads trailing_days of history: 5/60 extra reads


@dataclass(frozen=True)
class Shard:
    """One worker task: ``symbols`` over sessions ``start..end``; ``previous`` is the
    session before ``start`` (None for the first range), whose actions are not this
    shard's to report."""

    index: int
    symbols: tuple[str, ...]
    start: date
    end: date
    previous: date | None

    def label(self) -> str:
        first, last = self.symbols[0], self.symbols[-1]
        names = first if first == last else f"{first}..{last}"
        return f"{names} {self.start}..{self.end}"


def plan_shards(
    symbols: Sequence[str],
    sessions: Sequence[SessionInfo],
    workers: int,
    symbols_per_shard: int | None = None,
    sessions_per_shard: int | None = None,
) -> list[Shard]:
    """Shards covering every (symbol, session) exactly once.

    By default about two symbol groups per worker (so a slow shard does not leave a
    worker idle at the end), at most MAX_SYMBOLS_PER_SHARD symbols each, and session
    ranges of SESSIONS_PER_SHARD.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not symbols or not sessions:
        raise ValueError("nothing to shard: no symbols or no sessions")
    names = sorted(set(symbols))
    per_group = symbols_per_shard or min(
        MAX_SYMBOLS_PER_SHARD, math.ceil(len(names) / (2 * workers))
    )
    per_range = sessions_per_shard or SESSIONS_PER_SHARD
    if per_group < 1 or per_range < 1:
        raise ValueError("symbols and sessions per shard must be at least 1")
    groups = [tuple(names[i : i + per_group]) for i in range(0, len(names), per_group)]
    ranges = [sessions[i : i + per_range] for i in range(0, len(sessions), per_range)]
    shards: list[Shard] = []
    for group in groups:
        for i, rng in enumerate(ranges):
            previous = ranges[i - 1][-1].date if i else None
            shards.append(Shard(len(shards), group, rng[0].date, rng[-1].date, previous))
    return shards
