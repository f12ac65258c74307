"""The ExecutionManager on real replays of the demo store: fills, states, rejections."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sessionflow import BarEvent, Event, OrderStatus, SessionEndEvent, SystemManager
from sessionflow.execution_manager import Order
from sessionflow.execution_manager.orders import money
from tests.helpers import demo_settings, run_collect

DAY = {"start": date(2024, 11, 26), "end": date(2024, 11, 26)}
EARLY = {"start": date(2024, 11, 29), "end": date(2024, 11, 29)}  # closes 13:00 New York


def _run(path: Path, act: Any, **over: Any) -> tuple[SystemManager, list[Event]]:
    return run_collect(demo_settings(path, **{**DAY, **over}), on_event=act)


def test_market_order_fills_at_the_open_of_the_bar_after_the_decision(
    demo_store_path: Path,
) -> None:
    placed: list[tuple[Order, BarEvent]] = []

    def on(system: SystemManager, ev: Event) -> None:
        if isinstance(ev, BarEvent) and ev.bar.symbol == "SPY" and not placed:
            placed.append((system.execution_manager.submit("spy", "buy", 10), ev))

    system, events = _run(demo_store_path, on)
    order, seen = placed[0]
    nxt = next(
        e.bar for e in events
        if isinstance(e, BarEvent) and e.bar.symbol == "SPY" and e.bar.ts >= seen.time
    )  # fmt: skip
    assert order.status is OrderStatus.FILLED and order.symbol == "SPY"
    assert order.avg_fill_price == nxt.open and nxt.ts == seen.time
    assert system.portfolio.position("SPY").quantity == 10
    last = [e.bar for e in events if isinstance(e, BarEvent) and e.bar.symbol == "SPY"][-1]
    assert system.portfolio.position("SPY").last_price == money(last.close)
    assert system.portfolio.equity == system.portfolio.cash + 10 * money(last.close)


def test_every_rejection_has_its_reason(demo_store_path: Path) -> None:
    got: dict[str, Order] = {}

    def on(system: SystemManager, ev: Event) -> None:
        em = system.execution_manager
        if isinstance(ev, BarEvent) and ev.bar.symbol == "SPY" and not got:
            got["unknown"] = em.submit("IBM", "buy", 1)
            got["zero"] = em.submit("SPY", "buy", 0)
            got["fraction"] = em.submit("SPY", "buy", 1.5)  # type: ignore[arg-type]
            got["too_many"] = em.submit("SPY", "buy", 2_000_000)
            got["negative_price"] = em.submit("SPY", "buy", 1, limit=-1.0)
            got["nan_price"] = em.submit("SPY", "buy", 1, stop=math.nan)
            got["buying_power"] = em.submit("SPY", "buy", 100_000)
            got["short"] = em.submit("SPY", "sell", 1)
        if isinstance(ev, SessionEndEvent):
            got["after_last"] = em.submit("SPY", "buy", 1)

    system, _ = _run(demo_store_path, on)
    reasons = {k: (o.status, (o.reason or "").split(":")[0]) for k, o in got.items()}
    rejected = OrderStatus.REJECTED
    assert reasons == {
        "unknown": (rejected, "unknown_symbol"),
        "zero": (rejected, "bad_quantity"),
        "fraction": (rejected, "bad_quantity"),
        "too_many": (rejected, "quantity_above_maximum"),
        "negative_price": (rejected, "bad_price"),
        "nan_price": (rejected, "bad_price"),
        "buying_power": (rejected, "insufficient_buying_power"),
        "short": (rejected, "short_sale_not_allowed"),
        "after_last": (rejected, "after_last_session"),
    }
    assert sum(system.execution_manager.rejections.values()) == len(got)
    assert system.portfolio.cash == system.portfolio.initial_cash


def test_an_untraded_symbol_is_rejected_before_it_has_any_price(demo_store_path: Path) -> None:
    got: list[Order] = []

    def on(system: SystemManager, ev: Event) -> None:
        if not got and not isinstance(ev, BarEvent):  # the session start: no bar yet
            got.append(system.execution_manager.submit("SPY", "buy", 1))

    _run(demo_store_path, on, trailing_days=0)
    assert got[0].reason is not None and got[0].reason.startswith("untraded_symbol")


def test_client_order_id_is_idempotent(demo_store_path: Path) -> None:
    got: list[Order] = []

    def on(system: SystemManager, ev: Event) -> None:
        if isinstance(ev, BarEvent) and ev.bar.symbol == "SPY" and not got:
            em = system.execution_manager
            got.append(em.submit("SPY", "buy", 5, client_order_id="entry-1"))
            got.append(em.submit("SPY", "buy", 5, client_order_id="entry-1"))

    system, _ = _run(demo_store_path, on)
    assert got[0] is got[1]
    assert len(system.execution_manager.orders) == 1
    assert system.portfolio.position("SPY").quantity == 5
    assert system.execution_manager.counters["duplicate_client_order_id"] == 1


def test_day_order_expires_at_the_early_close_of_2024_11_29(demo_store_path: Path) -> None:
    got: list[Order] = []

    def on(system: SystemManager, ev: Event) -> None:
        if isinstance(ev, BarEvent) and ev.bar.symbol == "SPY" and not got:
            got.append(system.execution_manager.submit("SPY", "buy", 5, limit=1.0))

    _run(demo_store_path, on, **EARLY)
    order = got[0]
    assert order.status is OrderStatus.EXPIRED
    assert order.updated_at == datetime(2024, 11, 29, 18, 0, tzinfo=UTC)  # 13:00 New York


def test_cancel_and_replace(demo_store_path: Path) -> None:
    got: list[Order] = []

    def on(system: SystemManager, ev: Event) -> None:
        em = system.execution_manager
        if isinstance(ev, BarEvent) and ev.bar.symbol == "SPY":
            if not got:
                got.append(em.submit("SPY", "buy", 5, limit=1.0))
                got.append(em.submit("SPY", "buy", 5, limit=1.0, tif="gtc"))
                em.cancel(got[0].id)
            elif len(got) == 2:
                em.replace(got[1].id, quantity=7, limit=ev.bar.close * 1.05)
                got.append(got[1])

    system, _ = _run(demo_store_path, on)
    first, second = got[0], got[1]
    assert first.status is OrderStatus.CANCELLED and first.filled_quantity == 0
    assert second.status is OrderStatus.FILLED and second.filled_quantity == 7
    assert system.portfolio.position("SPY").quantity == 7
    assert [e.status for e in second.events] == [
        OrderStatus.ACCEPTED, OrderStatus.ACCEPTED, OrderStatus.FILLED,
    ]  # fmt: skip
    assert second.events[-1].time - second.events[1].time >= timedelta(minutes=1)


def test_a_replace_is_checked_against_buying_power_like_a_new_order() -> None:
    from sessionflow.execution_manager import BacktestBroker, ExecutionManager
    from sessionflow.portfolio import Portfolio
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import SYMBOLS, T0

    em = ExecutionManager(BacktestBroker(SYMBOLS), Portfolio(10_000), SYMBOLS, BacktestClock(T0),
                          lambda sym: 100.0)  # fmt: skip
    order = em.submit("SPY", "buy", 50, limit=100.0)
    em.submit("AAPL", "buy", 10, limit=100.0)  # another 1,000 committed
    assert order.status is OrderStatus.ACCEPTED
    em.replace(order.id, quantity=95)  # 9,500 + 1,000 > 10,000
    assert order.quantity == 50 and em.counters["replace_refused"] == 1
    em.replace(order.id, quantity=90, limit=99.0)  # 8,910 + 1,000 fits
    assert (order.quantity, order.limit) == (90, 99.0)


def test_orders_placed_at_one_instant_share_the_buying_power_and_a_cancel_frees_it() -> None:
    """The total the open orders hold is kept up as orders are added at one instant (not
    re-summed per order): each new order must still see every earlier one, and a
    cancel or a rejection must not leave a stale total behind."""
    from sessionflow.execution_manager import BacktestBroker, ExecutionManager
    from sessionflow.portfolio import Portfolio
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import SYMBOLS, T0

    em = ExecutionManager(BacktestBroker(SYMBOLS), Portfolio(10_000), SYMBOLS, BacktestClock(T0),
                          lambda sym: 100.0)  # fmt: skip
    placed = [em.submit("SPY", "buy", 30) for _ in range(3)]  # 9,000 of 10,000
    assert em.submit("AAPL", "buy", 11).status is OrderStatus.REJECTED  # 1,100 > 1,000 left
    last = em.submit("AAPL", "buy", 10)  # the rejected order holds nothing: 1,000 fits
    assert [o.status for o in [*placed, last]] == [OrderStatus.ACCEPTED] * 4
    assert em.submit("SPY", "buy", 1).status is OrderStatus.REJECTED
    em.cancel(placed[0].id)  # frees 3,000
    assert em.submit("SPY", "buy", 30).status is OrderStatus.ACCEPTED
    assert em.submit("SPY", "buy", 1).status is OrderStatus.REJECTED


def test_a_sale_counts_the_open_orders_of_its_symbol_buys_and_sells_apart() -> None:
    """With shorting off a sale may use shares an open buy will bring, never shares an
    open sale already takes: the open orders' remaining quantities count with their sign,
    on the one-at-a-time path and on submit_many's."""
    from sessionflow.execution_manager import BacktestBroker, ExecutionManager
    from sessionflow.portfolio import Portfolio
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import SYMBOLS, T0

    em = ExecutionManager(BacktestBroker(SYMBOLS), Portfolio(10_000), SYMBOLS, BacktestClock(T0),
                          lambda sym: 100.0)  # fmt: skip
    assert em.submit("SPY", "buy", 10).status is OrderStatus.ACCEPTED
    assert em.submit("SPY", "sell", 10).status is OrderStatus.ACCEPTED  # the buy's shares
    assert em.submit("SPY", "sell", 1).status is OrderStatus.REJECTED  # none left
    [many] = em.submit_many(["SPY"], "sell", 1)
    assert (many.status, (many.reason or "").split(":")[0]) == (
        OrderStatus.REJECTED,
        "short_sale_not_allowed",
    )


def test_submit_fast_paths_decide_as_the_checks_they_skip() -> None:
    """submit skips work for the usual input (a symbol already in its one spelling, an
    int quantity, a side or time in force by name): any other spelling must still be
    normalised, and every refused form still refused with its reason."""
    import numpy as np

    from sessionflow.execution_manager import BacktestBroker, ExecutionManager, Side, TimeInForce
    from sessionflow.portfolio import Portfolio
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import SYMBOLS, T0

    em = ExecutionManager(BacktestBroker(SYMBOLS), Portfolio(10_000), SYMBOLS, BacktestClock(T0),
                          lambda sym: 100.0)  # fmt: skip
    a = em.submit(" spy ", "buy", np.int64(5), tif="gtc")  # type: ignore[arg-type]
    b = em.submit("spy", Side.BUY, 5, tif=TimeInForce.DAY)
    assert [(o.symbol, o.side, o.tif, o.status) for o in (a, b)] == [
        ("SPY", Side.BUY, TimeInForce.GTC, OrderStatus.ACCEPTED),
        ("SPY", Side.BUY, TimeInForce.DAY, OrderStatus.ACCEPTED),
    ]
    for bad in (True, 5.0, 0, -1):
        refused = em.submit("SPY", "buy", bad)  # type: ignore[arg-type]
        assert (refused.reason or "").startswith("bad_quantity"), bad
    assert (em.submit("SPY", "buy", 1, tif="GTC").reason or "").startswith("bad_time_in_force")
    assert (em.submit("NOPE", "buy", 1).reason or "").startswith("unknown_symbol")


def test_a_gap_up_fill_in_a_cash_account_is_cut_to_the_cash_and_the_rest_cancelled() -> None:
    """Buying power is checked at submit against the last close; the market fill comes at
    the next open. A gap up must not leave a cash account owing money: the fill is cut to
    the whole shares the cash pays for, commission included, and the rest is cancelled
    with its reason and counted."""
    from sessionflow.execution_manager import BacktestBroker, ExecutionManager
    from sessionflow.execution_manager.commission import PerShare
    from sessionflow.portfolio import Portfolio
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import MIN, SYMBOLS, T0, bar_slice

    clock = BacktestClock(T0)
    em = ExecutionManager(BacktestBroker(SYMBOLS, commission=PerShare()), Portfolio(10_000),
                          SYMBOLS, clock, lambda sym: 99.0)  # fmt: skip
    order = em.submit("SPY", "buy", 100)  # ~9,900 + commission at the last close: accepted
    assert order.status is OrderStatus.ACCEPTED
    clock.advance(T0 + MIN)
    em.on_market(bar_slice(T0, 110.0, 111.0, 109.0, 110.5))  # opens 11% higher
    pf = em.portfolio
    assert pf.cash >= 0
    assert pf.position("SPY").quantity == order.filled_quantity == 90  # 9,900 + 1.00 fee
    assert pf.cash == Decimal("10000") - 90 * Decimal("110") - Decimal("1.00")
    assert order.status is OrderStatus.CANCELLED
    assert (order.reason or "").startswith("insufficient_cash_at_fill: 10 of 100 SPY")
    assert em.rejections["insufficient_cash_at_fill"] == 1
    assert pf.equity == pf.equity_from_pnl


def test_a_fill_the_cash_cannot_pay_for_at_all_cancels_the_order() -> None:
    from sessionflow.execution_manager import BacktestBroker, ExecutionManager
    from sessionflow.portfolio import Portfolio
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import MIN, SYMBOLS, T0, bar_slice

    clock = BacktestClock(T0)
    em = ExecutionManager(BacktestBroker(SYMBOLS), Portfolio(100), SYMBOLS, clock,
                          lambda sym: 100.0)  # fmt: skip
    order = em.submit("SPY", "buy", 1)
    clock.advance(T0 + MIN)
    em.on_market(bar_slice(T0, 100.5, 101.0, 100.0, 100.5))
    assert order.status is OrderStatus.CANCELLED and order.filled_quantity == 0
    assert em.portfolio.cash == 100 and not em.portfolio.positions
    assert not [e for e in order.events if e.fill is not None]


def test_fill_and_order_event_stay_frozen_value_objects_with_their_own_init() -> None:
    """Fill and OrderEvent write their slots in their own ``__init__`` (cheaper than the
    generated one): each argument must land in its field, by position or keyword, and
    users still see frozen, comparable, hashable, copyable dataclasses."""
    import dataclasses
    import pickle

    from sessionflow.execution_manager.orders import Fill, OrderEvent, Side

    t = datetime(2024, 11, 26, 14, 31, tzinfo=UTC)
    fill = Fill("o-1", t, "AAPL", Side.SELL, 7, 187.43, 1.25)
    assert dataclasses.asdict(fill) == {
        "order_id": "o-1", "time": t, "symbol": "AAPL", "side": Side.SELL,
        "quantity": 7, "price": 187.43, "commission": 1.25,
    }  # fmt: skip
    event = OrderEvent("o-1", OrderStatus.FILLED, t, fill, "r", 9, 1.5, 2.5, 3)
    assert [getattr(event, f.name) for f in dataclasses.fields(event)] == [
        "o-1", OrderStatus.FILLED, t, fill, "r", 9, 1.5, 2.5, 3,
    ]  # fmt: skip
    bare = OrderEvent("o-2", OrderStatus.ACCEPTED, t, filled=4)
    assert (bare.fill, bare.reason, bare.quantity, bare.limit, bare.stop, bare.filled) == (
        None, None, None, None, None, 4,
    )  # fmt: skip
    assert event == OrderEvent(**dataclasses.asdict(event) | {"fill": fill})
    assert hash(fill) == hash(Fill(**dataclasses.asdict(fill)))
    assert dataclasses.replace(fill, order_id="x").order_id == "x"
    assert pickle.loads(pickle.dumps(event)) == event
    assert repr(fill).startswith("Fill(order_id='o-1', time=")
    for obj, name in ((fill, "price"), (event, "status")):
        try:
            setattr(obj, name, None)
        except dataclasses.FrozenInstanceError:
            continue
        raise AssertionError(f"{type(obj).__name__}.{name} could be assigned")
