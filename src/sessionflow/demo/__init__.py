"""Deterministic synthetic data for the demo and the tests."""

from sessionflow.demo.synthetic import (
    DEMO_END,
    DEMO_START,
    DEMO_SYMBOLS,
    GAPPY,
    build_demo_store,
    synthetic_bars,
)

__all__ = ["DEMO_END", "DEMO_START", "DEMO_SYMBOLS", "GAPPY", "build_demo_store", "synthetic_bars"]
