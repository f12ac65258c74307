"""Deterministic synthetic data for the demo and the tests."""

from sessionflow.demo.store import DemoStore, build_demo_store, prepare_demo_store
from sessionflow.demo.synthetic import (
    DEMO_END,
    DEMO_START,
    DEMO_SYMBOLS,
    GAPPY,
    demo_bars,
    synthetic_bars,
)

__all__ = [
    "DEMO_END",
    "DEMO_START",
    "DEMO_SYMBOLS",
    "GAPPY",
    "DemoStore",
    "build_demo_store",
    "demo_bars",
    "prepare_demo_store",
    "synthetic_bars",
]
