"""``submit_many``: one instant's market orders as columns must be the very orders that
``submit`` called for each in turn would have made (ids, states, reasons, events, fills,
portfolio), whether they pass the checks together or one at a time; and the per-bar
callbacks, fed from the slice's columns, get the bars the per-bar events carry."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sessionflow.events import BarSliceEvent
from sessionflow.execution_manager import BacktestBroker, ExecutionManager, FillModel
from sessionflow.execution_manager.commission import PerShare
from sessionflow.execution_manager.manager import RiskLimits
from sessionflow.models import to_us
from sessionflow.portfolio import Portfolio
from sessionflow.store import BarBatch
from sessionflow.time_provider import BacktestClock
from tests.trading_helpers import MIN, T0

NAMES = ("AAPL", "MSFT", "NVDA", "QQQ", "SPY")


class Twin:
    """An ExecutionManager over the backtest broker, its clock and its latest closes."""

    def __init__(self, cash: float, account: str, allow_short: bool) -> None:
        self.clock = BacktestClock(T0)
        self.last: dict[str, float] = {}
        broker = BacktestBroker(NAMES, FillModel(None), PerShare())
        limits = RiskLimits(max_quantity=500, allow_short=allow_short)
        self.pf = Portfolio(cash, account, NAMES)
        self.em = ExecutionManager(broker, self.pf, NAMES, self.clock, self.last.get, limits)
        self.lanes = 0  # bursts the checked-together path took
        plain = self.em._plain_batch

        def counted(*args: Any) -> Any:
            out = plain(*args)
            self.lanes += out is not None
            return out

        self.em._plain_batch = counted  # type: ignore[method-assign]

    def market(self, ev: BarSliceEvent) -> None:
        self.clock.advance(ev.time)
        self.em.on_market(ev)
        self.last.update(zip(NAMES, ev.bars.close.tolist(), strict=True))

    def state(self) -> list[Any]:
        orders = [
            (o.id, o.client_order_id, o.symbol, o.side, o.quantity, o.type, o.tif, o.status,
             o.reason, o.submitted_at, o.updated_at, o.filled_quantity, o.avg_fill_price,
             [(e.status, e.time, e.fill, e.reason) for e in o.events])
            for o in self.em.orders
        ]  # fmt: skip
        pf = self.pf
        book = (pf.cash, pf.equity, pf.fees, pf.realised, pf.buying_power, pf.to_dict())
        return [orders, book, dict(self.em.rejections), dict(self.em.counters)]


def _slice(at: datetime, rng: random.Random) -> BarSliceEvent:
    n = len(NAMES)
    o = [round(rng.uniform(90, 110), 2) for _ in range(n)]
    c = [round(x + rng.uniform(-1, 1), 2) for x in o]
    batch = BarBatch.from_columns(
        list(NAMES), [to_us(at)] * n, o, [max(a, b) + 0.05 for a, b in zip(o, c, strict=True)],
        [min(a, b) - 0.05 for a, b in zip(o, c, strict=True)], c, [10_000] * n, [True] * n,
    )  # fmt: skip
    return BarSliceEvent(batch, at + MIN, rows=np.arange(n, dtype=np.intp))


def _burst(rng: random.Random) -> tuple[list[str], list[str], list[Any], str]:
    """Mostly orders that pass; sometimes a duplicate symbol, an unknown one, a bad
    quantity or side, a short sale, or more than the buying power pays for."""
    k = rng.randint(1, len(NAMES))
    symbols = rng.sample(NAMES, k)
    if rng.random() < 0.1:
        symbols.append(symbols[0])  # the same symbol twice in one burst
    if rng.random() < 0.05:
        symbols.append("ZZZZ")
    sides = [rng.choice(("buy", "buy", "sell")) for _ in symbols]
    qtys: list[Any] = [rng.choice((1, 5, 10, 40, 120)) for _ in symbols]
    if rng.random() < 0.05:
        qtys[0] = rng.choice((0, 2.5, 501, np.int64(3)))
    return symbols, sides, qtys, rng.choice(("day", "gtc"))


@pytest.mark.parametrize(
    ("cash", "account", "allow_short"),
    [(20_000, "cash", False), (8_000, "margin", True), (1_000_000, "cash", False)],
)
def test_submit_many_makes_the_orders_submit_makes_one_at_a_time(
    cash: float, account: str, allow_short: bool
) -> None:
    rng = random.Random(f"{cash}{account}")
    many, each = Twin(cash, account, allow_short), Twin(cash, account, allow_short)
    at = T0
    for _ in range(150):
        ev = _slice(at, rng)
        many.market(ev)
        each.market(ev)
        symbols, sides, qtys, tif = _burst(rng)
        got = many.em.submit_many(symbols, sides, qtys, tif=tif)
        want = [
            each.em.submit(s, d, q, tif=tif) for s, d, q in zip(symbols, sides, qtys, strict=True)
        ]
        assert [o.id for o in got] == [o.id for o in want]
        at += MIN
    assert many.state() == each.state()
    assert any(o.filled_quantity for o in many.em.orders)
    assert sum(many.em.rejections.values()) > 0
    assert many.pf.quantities().tolist() == [many.pf.quantity(s) for s in NAMES]
    assert many.lanes > 20  # the checked-together path ran, not only the fallback
    assert each.lanes == 0


def test_submit_many_takes_numpy_columns_and_one_side_for_all() -> None:
    twin = Twin(1_000_000, "cash", False)
    twin.market(_slice(T0, random.Random(1)))
    orders = twin.em.submit_many(np.array(["SPY", "AAPL"]), "buy", np.array([3, 4]), tif="gtc")
    assert [(o.symbol, o.quantity, o.status.value) for o in orders] == [
        ("SPY", 3, "accepted"), ("AAPL", 4, "accepted"),
    ]  # fmt: skip
    assert all(type(o.quantity) is int for o in orders)
    with pytest.raises(ValueError, match="2 symbols, 1 sides"):
        twin.em.submit_many(["SPY", "AAPL"], ["buy"], 1)


def test_per_bar_callbacks_get_the_bars_the_per_bar_events_carry(demo_store_path: Path) -> None:
    """The runner hands ``on_bar``/``on_derived_bar`` the slice's bars without building a
    ``BarEvent`` per bar first: each bar must be the one ``expand`` gives, its gap-fill
    flag and its derived length included."""
    import logging

    from sessionflow import Strategy, build_system
    from sessionflow.events import DerivedSliceEvent, expand
    from sessionflow.models import Bar
    from sessionflow.strategy.runner import StrategyRunner
    from tests.helpers import demo_settings

    got: list[Any] = []

    class Keep(Strategy):
        def on_bar(self, ctx: Any, bar: Bar) -> None:
            got.append(bar)

        def on_derived_bar(self, ctx: Any, bar: Bar, interval: int) -> None:
            got.append((bar, interval))

    system = build_system(demo_settings(demo_store_path))
    runner = StrategyRunner(system, Keep(), {}, logging.getLogger("test"))
    batch = _slice(T0, random.Random(2)).bars
    rows = np.arange(len(NAMES), dtype=np.intp)
    gap = BarSliceEvent(batch, T0 + MIN, filled=True, rows=rows)
    derived = DerivedSliceEvent(batch, T0 + 3 * MIN, interval=5, minutes=3, rows=rows)
    runner._on_event(gap)
    runner._on_event(derived)
    want = [e.bar for e in expand([gap])] + [(e.bar, 5) for e in expand([derived])]  # type: ignore[union-attr]
    assert got == want
    assert got[0].filled and got[-1][0].minutes == 3
