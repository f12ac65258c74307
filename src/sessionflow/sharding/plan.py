"""Cutting a backtest into shards: groups of symbols times ranges of sessions.

Symbols never interact in a replay (gaps, fills, derived bars, quality and history
are per symbol), so a symbol group is a complete system on its own. But the replay is
vectorised across symbols, so wide groups are cheaper per bar: the default plan splits
by dates first and by symbols only beyond MAX_SYMBOLS_PER_SHARD. A session range
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

# The replay is columnar across symbols: an instant costs about 0.2 ms plus 1 us per symbol
# (run_shard timed in-process, docs/scale.md): narrow symbol groups waste time; cut dates first.
MAX_SYMBOLS_PER_SHARD = 500  # a shard's grids grow with its symbols; 500 keep it near 60 MB
SESSIONS_PER_SHARD = 60  # the longest default range
MIN_SESSIONS_PER_SHARD = 5  # a later range re-reads trailing_days (5) sessions of history
SHARDS_PER_WORKER = 2  # so a slow shard does not leave a worker idle at the end


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

    By default: symbol groups of at most MAX_SYMBOLS_PER_SHARD (even sizes), and session
    ranges short enough for about SHARDS_PER_WORKER shards per worker, but no shorter than
    MIN_SESSIONS_PER_SHARD and no longer than SESSIONS_PER_SHARD.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not symbols or not sessions:
        raise ValueError("nothing to shard: no symbols or no sessions")
    if (symbols_per_shard is not None and symbols_per_shard < 1) or (
        sessions_per_shard is not None and sessions_per_shard < 1
    ):
        raise ValueError("symbols and sessions per shard must be at least 1")
    names = sorted(set(symbols))
    n_groups = math.ceil(len(names) / (symbols_per_shard or MAX_SYMBOLS_PER_SHARD))
    per_group = math.ceil(len(names) / n_groups)
    n_ranges = math.ceil(SHARDS_PER_WORKER * workers / n_groups)
    per_range = sessions_per_shard or min(
        SESSIONS_PER_SHARD, max(MIN_SESSIONS_PER_SHARD, math.ceil(len(sessions) / n_ranges))
    )
    groups = [tuple(names[i : i + per_group]) for i in range(0, len(names), per_group)]
    ranges = [sessions[i : i + per_range] for i in range(0, len(sessions), per_range)]
    shards: list[Shard] = []
    for group in groups:
        for i, rng in enumerate(ranges):
            previous = ranges[i - 1][-1].date if i else None
            shards.append(Shard(len(shards), group, rng[0].date, rng[-1].date, previous))
    return shards
