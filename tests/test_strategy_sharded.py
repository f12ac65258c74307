"""A per-symbol independent strategy run sharded by symbols equals the single process."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.execution_manager.bounds import BuyingPowerBounds, decided_alike
from sessionflow.results import BacktestResult
from sessionflow.sharding import plan_shards
from sessionflow.sharding.strategy import run_strategy_shard
from sessionflow.sharding.strategy_merge import BuyingPowerDiffers, merge_backtests
from sessionflow.strategy import load_strategy
from sessionflow.strategy.run import run_backtest, with_trading
from sessionflow.system_manager import Settings, build_system

ROOT = Path(__file__).resolve().parent.parent
SPEC = f"{ROOT / 'tests' / 'strategies.py'}:IndependentCrossover"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "SPY"]
START, END = date(2024, 11, 25), date(2024, 11, 27)
PARAMS = {"fast": 3, "slow": 8, "interval": 5, "quantity": 10}
COMMISSION = "per_share:0.005,min=1,max=0.01"


def _settings(store: Path, cash: float = 100_000) -> Settings:
    base = Settings.load(store_path=store, symbols=SYMBOLS, start=START, end=END)
    return with_trading(base, cash=cash, commission=COMMISSION)


def _sharded(settings: Settings, groups: int) -> BacktestResult:
    """The sharded run's tasks and merge, in this process (the CLI test uses Dask)."""
    system = build_system(settings)
    sessions = system.data_manager.sessions
    system.store.close()
    shards = plan_shards(settings.symbols, sessions, groups, len(SYMBOLS) // groups, len(sessions))
    assert len(shards) == groups
    parts = [
        run_strategy_shard(settings, s, str(settings.store_path), SPEC, PARAMS) for s in shards
    ]
    return merge_backtests(parts)


def _orders(result: BacktestResult) -> list[dict[str, Any]]:
    return [{k: v for k, v in vars(o).items() if k != "events"} for o in result.orders]


def assert_same(single: BacktestResult, sharded: BacktestResult) -> None:
    assert _orders(sharded) == _orders(single)
    assert sharded.fills == single.fills
    assert sharded.trades == single.trades
    assert sharded.positions == single.positions
    assert [t for t, _ in sharded.equity_curve] == [t for t, _ in single.equity_curve]
    cents = [[round(e, 2) for _, e in r.equity_curve] for r in (sharded, single)]
    assert cents[0] == cents[1]
    assert sharded.daily_equity == single.daily_equity
    assert round(sharded.final_equity, 2) == round(single.final_equity, 2)
    assert round(sharded.cash, 2) == round(single.cash, 2)
    assert sharded.statistics == pytest.approx(single.statistics)


def test_symbol_shards_merge_into_the_single_process_result(demo_store_path: Path) -> None:
    settings = _settings(demo_store_path)
    single = run_backtest(settings, load_strategy(SPEC), PARAMS)
    assert len(single.fills) >= 8 and {f.symbol for f in single.fills} == set(SYMBOLS)
    assert single.statistics["fees"] > 0
    assert_same(single, _sharded(settings, 2))
    assert_same(single, _sharded(settings, 4))


def test_a_binding_buying_power_refuses_the_merge(demo_store_path: Path) -> None:
    """With cash for about one position at a time, a shard alone buys what one process,
    holding another symbol, might not: the merge is refused rather than wrong."""
    with pytest.raises(BuyingPowerDiffers, match="sharded run refused: shard"):
        _sharded(_settings(demo_store_path, cash=3_000), 2)


def test_decided_alike_bounds_each_shard_by_the_others() -> None:
    def bounds(low: int, high: int, passed: int | None, failed: int | None) -> BuyingPowerBounds:
        b = BuyingPowerBounds(Decimal(1000), Decimal(low), Decimal(high))
        b.passed = None if passed is None else Decimal(passed)
        b.failed = None if failed is None else Decimal(failed)
        return b

    # shard 0 passed with 300 to spare; shard 1 spent at most 300 of the shared cash
    assert decided_alike([bounds(-500, 0, 300, None), bounds(-300, 0, 700, None)]) is None
    assert decided_alike([bounds(-500, 0, 300, None), bounds(-301, 0, 700, None)]) == 0
    # shard 0 was 50 short; shard 1's gains of up to 50 might have covered it
    assert decided_alike([bounds(0, 0, None, 50), bounds(0, 49, None, None)]) is None
    assert decided_alike([bounds(0, 0, None, 50), bounds(0, 50, None, None)]) == 0


def _cli(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["backtest", *[str(a) for a in args]])
    return res.exit_code, res.stdout, res.stderr


def test_workers_2_prints_what_one_process_prints(tmp_path: Path, demo_store_path: Path) -> None:
    common: list[str | Path] = [
        "--symbols", ",".join(SYMBOLS), "--start", str(START), "--end", str(END),
        "--store", demo_store_path, "--strategy", SPEC, "--commission", COMMISSION, "--json",
        *[a for k, v in PARAMS.items() for a in ("--param", f"{k}={v}")],
    ]  # fmt: skip
    code, single, err = _cli(*common, "--output", tmp_path / "one")
    assert code == 0, err
    code, sharded, err = _cli(*common, "--workers", "2", "--output", tmp_path / "two")
    assert code == 0, err
    assert json.loads(sharded) == json.loads(single)
    for name in ("orders", "fills", "trades", "positions", "equity"):
        one = (tmp_path / "one" / f"{name}.csv").read_text()
        assert (tmp_path / "two" / f"{name}.csv").read_text() == one, name


def test_date_shards_are_refused_for_a_strategy(demo_store_path: Path) -> None:
    code, out, err = _cli("--symbols", "AAPL,MSFT", "--start", str(START), "--end", str(END),
                          "--store", demo_store_path, "--strategy", SPEC, "--workers", "2",
                          "--shard-sessions", "1")  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "cross sessions" in err, err


def test_bounds_see_open_orders_at_once_and_the_cash_check_at_fill() -> None:
    """The low end moves when an order is accepted (before any bar), and a buy cut at
    fill time is a failed check the merge weighs against the other shards."""
    from sessionflow.execution_manager import BacktestBroker, ExecutionManager
    from sessionflow.portfolio import Portfolio
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import MIN, SYMBOLS, T0, bar_slice

    clock = BacktestClock(T0)
    em = ExecutionManager(BacktestBroker(SYMBOLS), Portfolio(10_000), SYMBOLS, clock,
                          lambda sym: 99.0)  # fmt: skip
    em.bounds = bounds = BuyingPowerBounds(em.free_buying_power())
    em.submit("AAPL", "buy", 10, limit=50.0, tif="gtc")  # never fills here
    assert bounds.low == Decimal(-500) and bounds.passed == Decimal(9_500)
    em.submit("SPY", "buy", 95)  # 9,405 at the last close: passes with 95 to spare
    assert bounds.low == Decimal(-9_905) and bounds.passed == Decimal(95)
    clock.advance(T0 + MIN)
    em.on_market(bar_slice(T0, 110.0, 111.0, 109.0, 110.5))  # 95 at 110 = 10,450 > 10,000
    assert bounds.failed == Decimal(450)
    assert em.portfolio.position("SPY").quantity == 90  # 9,900 of the 10,000
