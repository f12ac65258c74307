"""NautilusTrader's internal aggregation (as ``nautilus``) delivering every 1m and derived
bar to an actor that only counts them: Nautilus's own cost per delivered bar, beside
``sessionflow_noop`` (issue 23, item 5). Only the delivered totals are compared."""

from __future__ import annotations

from pathlib import Path

from peers import engine_nautilus
from peers.job import EngineResult, Job


def run(data: Path, job: Job) -> EngineResult:
    return engine_nautilus.run(data, job, noop=True)
