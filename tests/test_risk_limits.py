"""Pre-trade risk limits (execution_manager/risk.py): each refuses with its reason before
anything reaches the broker, counted by reason; the same ExecutionManager path as live."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sessionflow.events import SessionStartEvent
from sessionflow.execution_manager import BacktestBroker, ExecutionManager, OrderStatus
from sessionflow.execution_manager.risk import PreTradeRisk, TradeLimits
from sessionflow.portfolio import Portfolio
from sessionflow.time_provider import BacktestClock
from tests.test_strategy_cli import CROSSOVER, SPAN, cli
from tests.trading_helpers import MIN, SYMBOLS, T0, bar_slice


class CountingBroker(BacktestBroker):
    """The backtest broker, counting what reached it (nothing refused may)."""

    def __init__(self) -> None:
        super().__init__(SYMBOLS)
        self.sent: list[str] = []

    def submit(self, order: Any, now: Any) -> None:
        self.sent.append(order.id)
        super().submit(order, now)


def manager(clock: BacktestClock | None = None, **limits: Any) -> ExecutionManager:
    risk = PreTradeRisk(TradeLimits(**limits))
    clock = clock or BacktestClock(T0)
    return ExecutionManager(CountingBroker(), Portfolio(100_000), SYMBOLS, clock,
                            lambda sym: 100.0, risk=risk)  # fmt: skip


def sent(em: ExecutionManager) -> list[str]:
    broker = em.broker
    assert isinstance(broker, CountingBroker)
    return broker.sent


def test_max_order_value_refuses_a_larger_order_with_its_reason() -> None:
    em = manager(max_order_value=5_000)
    ok = em.submit("SPY", "buy", 50)  # 5,000 at the last close: at the limit
    big = em.submit("SPY", "buy", 51)
    limit = em.submit("SPY", "buy", 60, limit=80.0)  # priced at its limit: 4,800
    assert [o.status for o in (ok, big, limit)] == [
        OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.ACCEPTED]  # fmt: skip
    assert (big.reason or "").startswith("max_order_value: buy 51 SPY at ~100")
    assert em.rejections["max_order_value"] == 1
    assert big.id not in sent(em)


def test_max_position_value_counts_open_orders_and_lets_a_reduction_pass() -> None:
    em = manager(max_position_value=10_000)
    first = em.submit("SPY", "buy", 60)
    second = em.submit("SPY", "buy", 41)  # 101 shares with the open order: 10,100
    third = em.submit("SPY", "buy", 40)  # 100 shares: 10,000, at the limit
    assert [o.status for o in (first, second, third)] == [
        OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.ACCEPTED]  # fmt: skip
    assert (second.reason or "").startswith("max_position_value: buy 41 SPY makes the position 101")
    em.on_market(bar_slice(T0, 100.0, 100.0, 100.0, 100.0))  # both fill: 100 held
    assert em.portfolio.position("SPY").quantity == 100
    # reduces the position: passes though 90 shares at its limit price are 13,500
    assert em.submit("SPY", "sell", 10, limit=150.0).status is OrderStatus.ACCEPTED
    assert em.submit("AAPL", "buy", 100).status is OrderStatus.ACCEPTED  # per symbol
    assert em.rejections["max_position_value"] == 1


def test_max_orders_per_minute_refuses_past_the_rate_and_frees_after_a_minute() -> None:
    clock = BacktestClock(T0)
    em = manager(clock, max_orders_per_minute=3)
    statuses = [em.submit("SPY", "buy", 1).status for _ in range(4)]
    assert statuses == [OrderStatus.ACCEPTED] * 3 + [OrderStatus.REJECTED]
    assert em.orders[-1].reason == (
        "max_orders_per_minute: buy 1 SPY: 3 orders sent in the last minute, the maximum is 3"
    )
    refused_elsewhere = em.submit("SPY", "buy", 0)  # refused before the rate: not counted
    assert refused_elsewhere.reason is not None
    assert refused_elsewhere.reason.startswith("bad_quantity")
    clock.advance(T0 + MIN - timedelta(microseconds=1))
    assert em.submit("SPY", "buy", 1).status is OrderStatus.REJECTED
    clock.advance(T0 + MIN)
    assert em.submit("SPY", "buy", 1).status is OrderStatus.ACCEPTED
    assert em.rejections["max_orders_per_minute"] == 2
    assert len(sent(em)) == 4


def _session_start(day: date, at: Any) -> SessionStartEvent:
    return SessionStartEvent(day, at, at + 390 * MIN, at)


def test_daily_loss_limit_stops_new_exposure_for_the_rest_of_the_session() -> None:
    clock = BacktestClock(T0)
    em = manager(clock, daily_loss_limit=1_000)
    em.on_market(_session_start(T0.date(), T0))
    em.submit("SPY", "buy", 200)
    clock.advance(T0 + MIN)
    em.on_market(bar_slice(T0, 100.0, 100.0, 100.0, 100.0))  # filled at 100
    clock.advance(T0 + 2 * MIN)
    em.on_market(bar_slice(T0 + MIN, 100.0, 100.0, 95.0, 95.0))  # -1,000 marked
    refused = em.submit("AAPL", "buy", 1)
    assert refused.status is OrderStatus.REJECTED
    assert (refused.reason or "").startswith("daily_loss_limit: buy 1 AAPL: daily loss limit")
    assert em.submit("SPY", "sell", 50).status is OrderStatus.ACCEPTED  # a way out passes
    clock.advance(T0 + 3 * MIN)
    em.on_market(bar_slice(T0 + 2 * MIN, 99.0, 101.0, 99.0, 101.0))  # back above the start
    assert em.submit("AAPL", "buy", 1).status is OrderStatus.REJECTED  # rest of the session
    next_day = T0 + timedelta(days=1)
    clock.advance(next_day)
    em.on_market(_session_start(next_day.date(), next_day))
    assert em.submit("AAPL", "buy", 1).status is OrderStatus.ACCEPTED
    assert em.rejections["daily_loss_limit"] == 2


def test_the_kill_switch_orders_are_exempt_and_not_counted() -> None:
    em = manager(max_orders_per_minute=2, max_order_value=150)
    assert em.submit("SPY", "buy", 1).status is OrderStatus.ACCEPTED
    with em.risk.exempt():  # above the order value, and past the rate
        assert all(em.submit("SPY", "buy", 2).status is OrderStatus.ACCEPTED for _ in range(3))
    assert em.submit("SPY", "buy", 1).status is OrderStatus.ACCEPTED  # the 2nd counted
    assert em.submit("SPY", "buy", 1).status is OrderStatus.REJECTED


def test_no_limits_set_checks_nothing() -> None:
    em = manager()
    assert not em.risk.active
    assert all(em.submit("SPY", "buy", 100).status is OrderStatus.ACCEPTED for _ in range(5))


def test_backtest_cli_applies_the_limits_and_reports_the_rejections(demo_store_path: Path) -> None:
    """The same ExecutionManager path from ``backtest --strategy``: the crossover's 10-share
    orders are worth more than 100, so each is refused and counted by its reason."""
    code, out, err = cli(*SPAN, "--store", demo_store_path, "--strategy", CROSSOVER,
                         "--max-order-value", "100", "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rejections"]["max_order_value"] > 0
    stats = summary["statistics"]  # every order refused (one for another reason, after the end)
    assert stats["orders"] == stats["rejected"] == sum(summary["rejections"].values())


def test_sharded_runs_refuse_the_limits_that_count_across_symbols(demo_store_path: Path) -> None:
    code, _, err = cli(*SPAN, "--store", demo_store_path, "--strategy",
                       CROSSOVER.replace(":Crossover", ":IndependentCrossover"), "--workers", "2",
                       "--max-orders-per-minute", "5")  # fmt: skip
    assert code == 2
    assert err.strip().endswith("so shards cannot apply them apart")


def test_risk_options_without_a_strategy_are_refused(demo_store_path: Path) -> None:
    code, _, err = cli(*SPAN, "--store", demo_store_path, "--daily-loss-limit", "10")
    assert code == 2 and "the risk limits need --strategy" in err
