"""``sessionflow check``: bad input, faults, stress and determinism, each measured for real.

The modules here are what the ``check`` command runs and what the reliability tests
use: ``bad_input`` (the matrix), ``faults`` (SIGKILL, fill-source errors, consumer
errors, stop()), ``stress`` (invariant observers under jitter), ``determinism``
(hashes of repeated runs), ``stores`` (the data set and fault-injecting stores) and
``runner`` (all rounds, one report).
"""

from sessionflow.check.runner import CheckReport, run_check

__all__ = ["CheckReport", "run_check"]
