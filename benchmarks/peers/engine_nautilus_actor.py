"""NautilusTrader at its best here: the actor subscribes to the 1m bars only and builds
the 5m, 8m and 15m bars itself (``peers.job.WindowBuilder``) instead of the DataEngine's
time-bar aggregators; prices read with ``as_double()``."""

from __future__ import annotations

from pathlib import Path

from peers import engine_nautilus
from peers.job import EngineResult, Job


def run(data: Path, job: Job) -> EngineResult:
    return engine_nautilus.run(data, job, build_in_actor=True)
