"""sessionflow with its columnar consumer API (``SystemManager.on_batch``).

Same job, store and checks as ``engine_sessionflow``; the consumer receives each
instant's 1m bars and each derived window as one columnar slice instead of one
event per bar. Fails (shown as an error) on a sessionflow without ``on_batch``.
"""

from __future__ import annotations

from pathlib import Path

from peers import engine_sessionflow
from peers.job import EngineResult, Job


def run(data: Path, job: Job) -> EngineResult:
    return engine_sessionflow.run(data, job, batch=True)
