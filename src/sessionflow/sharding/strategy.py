"""A per-symbol independent strategy, run on a worker over one group of symbols.

Strategies shard by symbols only: a strategy's state (indicators, counters) and its gtc
orders carry from one session to the next, so a shard starting mid-range would not be
the single process. Each shard is a whole backtest (``Backtest``) with the whole cash;
besides its result it returns the curves the merge sums (equity, cash, exposure) and
its buying-power bounds, which decide whether the merge is exact
(``sessionflow.execution_manager.bounds``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sessionflow.execution_manager.bounds import BuyingPowerBounds
from sessionflow.results import BacktestResult
from sessionflow.sharding.plan import Shard
from sessionflow.sharding.shard import ShardError, shard_settings
from sessionflow.store.open import open_store
from sessionflow.system_manager import Settings


@dataclass(frozen=True)
class StrategyShardResult:
    shard: Shard
    result: BacktestResult
    initial_cash: Decimal
    times: list[datetime]
    equity: list[float]
    exposure: list[float]
    daily: list[tuple[date, float]]
    fees: Decimal
    bounds: BuyingPowerBounds
    bars: int  # minutes sampled, for the progress line
    seconds: float


def run_strategy_shard(
    settings: Settings, shard: Shard, store_name: str, spec: str, params: dict[str, Any]
) -> StrategyShardResult:
    """Backtest ``spec`` (FILE.py:Class, loaded here) over ``shard``'s symbols.

    A failure of the engine is a :class:`ShardError`; a strategy that raised comes back
    as an incomplete result, as it does in one process.
    """
    try:
        return _run(settings, shard, store_name, spec, params)
    except ShardError:
        raise
    except Exception as exc:
        raise ShardError.of(shard, str(exc) or type(exc).__name__) from None


def _run(
    settings: Settings, shard: Shard, store_name: str, spec: str, params: dict[str, Any]
) -> StrategyShardResult:
    from sessionflow.strategy import load_strategy
    from sessionflow.strategy.run import Backtest

    store = open_store(store_name, read_only=True)
    try:
        test = Backtest(shard_settings(settings, shard), load_strategy(spec), params, store)
        em, pf, rec = test.system.execution_manager, test.system.portfolio, test.recorder
        em.bounds = BuyingPowerBounds(em.free_buying_power())
        t0 = time.perf_counter()
        result = test.run()
        seconds = time.perf_counter() - t0
    finally:
        store.close()
    return StrategyShardResult(
        shard, result, pf.initial_cash, rec.times, rec.equity, rec.exposure, rec.daily,
        pf.fees, em.bounds, len(rec.times), seconds,
    )  # fmt: skip
