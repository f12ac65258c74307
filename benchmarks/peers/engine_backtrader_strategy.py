"""backtrader at its best here: 1m ``PandasDirectData`` feeds with preload and runonce on
(no ``resampledata``, which turns preloading off), and the strategy builds the 5m, 8m
and 15m bars from the 1m bars it sees (``peers.job.WindowBuilder``)."""

from __future__ import annotations

from pathlib import Path

from peers import engine_backtrader
from peers.job import EngineResult, Job


def run(data: Path, job: Job) -> EngineResult:
    return engine_backtrader.run(data, job, build_in_strategy=True)
