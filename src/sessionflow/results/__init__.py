"""Backtest results: the recorder, round-trip trades, statistics and writers."""

from sessionflow.results.recorder import Recorder
from sessionflow.results.result import BacktestResult
from sessionflow.results.statistics import compute as compute_statistics
from sessionflow.results.trades import Trade, round_trips
from sessionflow.results.writers import write as write_results

__all__ = [
    "BacktestResult",
    "Recorder",
    "Trade",
    "compute_statistics",
    "round_trips",
    "write_results",
]
