"""Engines compared by ``benchmarks/compare.py`` on one fixed job (see ``job.py``)."""
