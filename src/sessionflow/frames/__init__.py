"""DataFrames out of the engine: bars as a backtest delivers them, reports and results.

``read_bars``/``iter_bars`` read the store through the engine's own code for a past
session (docs/dataframes.md); ``to_frame`` turns any Arrow table into pandas or polars.
"""

from sessionflow.frames.backend import BACKENDS, FrameBackendError, to_frame
from sessionflow.frames.read import ReadError, iter_bars, iter_tables, read_bars

__all__ = [
    "BACKENDS",
    "FrameBackendError",
    "ReadError",
    "iter_bars",
    "iter_tables",
    "read_bars",
    "to_frame",
]
