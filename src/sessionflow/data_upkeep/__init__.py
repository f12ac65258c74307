"""The data-upkeep worker (thread 2): gaps, fills, quality, derived bars, history, prefetch."""

from sessionflow.data_upkeep.derived import aggregate_window, derive_bars
from sessionflow.data_upkeep.gaps import GapTracker, minute_ranges
from sessionflow.data_upkeep.prefetch import ReplayBars, SessionLoader, SessionPayload
from sessionflow.data_upkeep.worker import CheckResult, DerivedSlice, UpkeepWorker

__all__ = [
    "CheckResult",
    "DerivedSlice",
    "GapTracker",
    "ReplayBars",
    "SessionLoader",
    "SessionPayload",
    "UpkeepWorker",
    "aggregate_window",
    "derive_bars",
    "minute_ranges",
]
