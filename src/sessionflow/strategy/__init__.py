"""Strategies: the base class, the context they act through, loading and running them."""

from sessionflow.strategy.base import Strategy
from sessionflow.strategy.context import Context
from sessionflow.strategy.loader import (
    StrategyLoadError,
    load_strategy,
    merged_params,
    parse_params,
)
from sessionflow.strategy.runner import StrategyError, StrategyRunner

__all__ = [
    "Context",
    "Strategy",
    "StrategyError",
    "StrategyLoadError",
    "StrategyRunner",
    "load_strategy",
    "merged_params",
    "parse_params",
]
