"""sessionflow per bar, with a consumer that buffers each bar's fields and reduces them
at the session's end (``engine_sessionflow._BufferedTally``).

Same engine path as ``engine_sessionflow`` (``on_event``, one event per bar); only the
consumer's own bookkeeping differs. The peers' consumers call ``Row.add`` per bar, so
compare them with the ``sessionflow`` row; this row shows what a buffering strategy costs.
"""

from __future__ import annotations

from pathlib import Path

from peers import engine_sessionflow
from peers.job import EngineResult, Job


def run(data: Path, job: Job) -> EngineResult:
    return engine_sessionflow.run(data, job, buffered=True)
