"""sessionflow columnar (``on_batch``) with a consumer that does nothing with the bars.

The engine's own cost per delivered bar (issue 23, item 2): beside
``sessionflow_noop`` it shows what the per-bar delivery costs over the columnar
one. Only the engine's session figures are compared with numpy's.
"""

from __future__ import annotations

from pathlib import Path

from peers import engine_sessionflow
from peers.job import EngineResult, Job


def run(data: Path, job: Job) -> EngineResult:
    return engine_sessionflow.run(data, job, batch=True, noop=True)
