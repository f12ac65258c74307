"""The portfolio's two books agree at every instant, whatever the order stream."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionflow.events import SessionEndEvent
from sessionflow.execution_manager import Fill, OrderStatus, Side
from sessionflow.execution_manager.orders import money
from sessionflow.portfolio import Portfolio

T = datetime(2024, 11, 26, 15, 0, tzinfo=UTC)
SYMS = ("AAPL", "MSFT")

prices = st.decimals(min_value="0.01", max_value="5000", places=4).map(float)
step = st.one_of(
    st.tuples(st.just("fill"), st.sampled_from(SYMS), st.sampled_from(["buy", "sell"]),
              st.integers(1, 5_000), prices,
              st.decimals(min_value=0, max_value=50, places=2).map(float)),
    st.tuples(st.just("mark"), st.sampled_from(SYMS), prices),
    st.tuples(st.just("split"), st.sampled_from(SYMS), st.sampled_from([2.0, 7.0, 1.5, 0.5, 0.1])),
    st.tuples(st.just("dividend"), st.sampled_from(SYMS),
              st.decimals(min_value="0.01", max_value=5, places=4).map(float)),
)  # fmt: skip


def _play(pf: Portfolio, s: tuple[object, ...]) -> None:
    kind, sym = s[0], str(s[1])
    if kind == "fill":
        _, _, side, qty, price, fee = s
        pf.apply_fill(Fill("o", T, sym, Side(side), int(qty), float(price), float(fee)))  # type: ignore[call-overload, arg-type]
    elif kind == "mark":
        pf.mark(sym, float(s[2]))  # type: ignore[arg-type]
    elif kind == "split":
        pf.apply_split(sym, float(s[2]))  # type: ignore[arg-type]
    else:
        pf.apply_dividend(sym, float(s[2]))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
def test_cash_plus_market_value_is_equity_to_the_cent_over_random_streams(
    steps: list[tuple[object, ...]],
) -> None:
    pf = Portfolio(100_000)
    for s in steps:
        _play(pf, s)
        # the second book (initial cash + realised + unrealised + dividends - fees) agrees
        assert abs(pf.equity - pf.equity_from_pnl) < Decimal("0.000001"), s
        assert pf.equity == pf.cash + pf.market_value


any_price = st.one_of(prices, st.floats(min_value=0.01, max_value=5000, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), st.lists(st.tuples(st.sampled_from(SYMS), any_price)))
def test_marks_kept_by_row_value_the_book_as_a_decimal_per_position_does(
    steps: list[tuple[object, ...]], marks: list[tuple[str, float]]
) -> None:
    """Marks live in float arrays and are valued in integers of 1e-6 when they can be:
    the value must equal the sum of ``quantity * money(mark)`` per position, exactly,
    marked by name or by row, with marks of any number of decimals and split marks."""
    by_name, by_row = Portfolio(100_000), Portfolio(100_000, universe=SYMS)
    for s in [*steps, *(("mark", sym, px) for sym, px in marks)]:
        _play(by_name, s)
        if s[0] == "mark":
            rows = np.array([SYMS.index(str(s[1]))])
            by_row.mark_rows(rows, np.array([float(s[2])]))  # type: ignore[arg-type]
        else:
            _play(by_row, s)
        for pf in (by_name, by_row):
            each = [p.quantity * (p.last_price or 0) for p in pf.positions.values()]
            assert pf.market_value == sum(each, Decimal(0)), s
            assert pf.gross_exposure == sum((abs(v) for v in each), Decimal(0)), s
        assert by_row.market_value == by_name.market_value


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=40))
def test_a_fill_never_moves_the_mark_only_a_close_or_a_split_does(
    steps: list[tuple[object, ...]],
) -> None:
    """A position is marked at its first fill's price until a close marks it, and a split
    divides the mark; later fills at other prices leave it (the fill path does not read
    or write the mark, so a stale or fill-price mark would show here)."""
    pf = Portfolio(100_000)
    mark: dict[str, Decimal] = {}
    for s in steps:
        kind, sym = s[0], str(s[1])
        held = pf.quantity(sym)
        _play(pf, s)
        if kind == "fill" and sym not in mark:
            mark[sym] = money(float(s[4]))  # type: ignore[arg-type]
        elif kind == "mark" and held:
            mark[sym] = money(float(s[2]))  # type: ignore[arg-type]
        elif kind == "split" and held:
            mark[sym] = mark[sym] / money(float(s[2]))  # type: ignore[arg-type]
        for p in pf.positions.values():
            assert p.last_price == mark[p.symbol], s
        want = sum((p.quantity * mark[p.symbol] for p in pf.positions.values()), Decimal(0))
        assert pf.market_value == want, s


def test_average_price_realised_pnl_and_a_flip_through_zero() -> None:
    pf = Portfolio(10_000)
    for side, qty, price in (("buy", 10, 100.0), ("buy", 10, 110.0), ("sell", 25, 120.0)):
        pf.apply_fill(Fill("o", T, "AAPL", Side(side), qty, price, 1.0))
    pos = pf.position("AAPL")
    assert pos.quantity == -5 and pos.avg_price == 120.0
    assert pf.realised == Decimal(300)  # 20 shares bought at 105 on average, sold at 120
    assert pf.cash == Decimal(10_000) - 1000 - 1100 + 3000 - 3
    pf.mark("AAPL", 130.0)
    assert pf.position("AAPL").unrealised == Decimal(-50)
    assert pf.equity == pf.cash - 650


def test_split_changes_quantity_and_average_price_and_pays_fractions_in_cash() -> None:
    pf = Portfolio(10_000)
    pf.apply_fill(Fill("o", T, "AAPL", Side.BUY, 3, 600.0, 0.0))
    pf.mark("AAPL", 700.0)
    before = pf.equity
    assert pf.apply_split("AAPL", 7.0) == 0
    pos = pf.position("AAPL")
    assert (pos.quantity, pos.avg_price, pos.last_price) == (21, 600.0 / 7, Decimal(100))
    assert pf.equity == before
    assert pf.apply_split("AAPL", 0.5) == Decimal(100)  # 10.5 shares at 200: half in cash
    assert pf.position("AAPL").quantity == 10 and pf.equity == before


def test_dividend_is_credited_long_and_charged_short() -> None:
    pf = Portfolio(10_000)
    pf.apply_fill(Fill("o", T, "AAPL", Side.BUY, 100, 50.0, 0.0))
    assert pf.apply_dividend("AAPL", 0.24) == Decimal("24.00")
    pf.apply_fill(Fill("o", T, "MSFT", Side.SELL, 10, 400.0, 0.0))
    assert pf.apply_dividend("MSFT", 0.83) == Decimal("-8.30")
    assert pf.dividends == Decimal("15.70")
    assert pf.cash == Decimal(10_000) - 5000 + 4000 + Decimal("15.70")


def test_buying_power_cash_and_reg_t_margin() -> None:
    cash = Portfolio(10_000, "cash")
    margin = Portfolio(10_000, "margin")
    for pf in (cash, margin):
        pf.apply_fill(Fill("o", T, "AAPL", Side.BUY, 50, 100.0, 0.0))
    assert cash.buying_power == Decimal(5_000)
    assert margin.buying_power == Decimal(15_000)  # 2 x 10,000 equity - 5,000 held


def _order_stream() -> st.SearchStrategy[list[tuple[object, ...]]]:
    price = st.integers(9_000, 11_000).map(lambda c: c / 100)
    submit = st.tuples(
        st.just("submit"), st.sampled_from(("AAPL", "SPY")), st.sampled_from(["buy", "sell"]),
        st.integers(-2, 400), st.one_of(st.none(), price), st.one_of(st.none(), price),
        st.sampled_from(["day", "gtc"]),
    )  # fmt: skip
    bar = st.tuples(
        st.just("bar"), st.sampled_from(("AAPL", "SPY")), price, price, st.integers(0, 5_000)
    )
    other = st.tuples(st.sampled_from(["cancel", "replace", "close"]), st.integers(0, 30), price)
    return st.lists(st.one_of(submit, submit, bar, bar, bar, other), max_size=80)


@settings(max_examples=150, deadline=None)
@given(_order_stream(), st.sampled_from(["cash", "margin"]))
def test_any_order_stream_through_the_manager_keeps_the_portfolio_consistent(
    steps: list[tuple[object, ...]], account: str
) -> None:
    """Random orders, cancels, replaces, bars and closes through the real ExecutionManager
    and backtest broker: the books agree, positions equal the fills, no order overfills."""
    from sessionflow.execution_manager import (
        BacktestBroker,
        ExecutionManager,
        FillModel,
        RiskLimits,
    )  # fmt: skip
    from sessionflow.execution_manager.commission import PerShare
    from sessionflow.execution_manager.slippage import BasisPoints
    from sessionflow.time_provider import BacktestClock
    from tests.trading_helpers import MIN, SYMBOLS, bar_slice

    clock = BacktestClock(T)
    broker = BacktestBroker(SYMBOLS, FillModel(0.1), PerShare(), BasisPoints(Decimal(3)))
    last: dict[str, float] = {s: 100.0 for s in SYMBOLS}
    em = ExecutionManager(broker, Portfolio(50_000, account), SYMBOLS, clock, last.get,
                          RiskLimits(300, allow_short=True))  # fmt: skip
    pf, now = em.portfolio, T
    for s in steps:
        kind = s[0]
        if kind == "submit":
            _, sym, side, qty, limit, stop, tif = s
            em.submit(str(sym), str(side), qty, limit=limit, stop=stop, tif=str(tif))  # type: ignore[arg-type]
        elif kind == "bar":
            _, sym, a, b, vol = s
            o, c = float(a), float(b)  # type: ignore[arg-type]
            ev = bar_slice(now, o, max(o, c) + 0.05, min(o, c) - 0.05, c, int(vol), str(sym))  # type: ignore[call-overload]
            now += MIN
            clock.advance(now)
            em.on_market(ev)
            last[str(sym)] = c
        elif kind == "close":
            broker.on_market(SessionEndEvent(now.date(), now, None, False))  # type: ignore[arg-type]
        elif em.orders:
            target = em.orders[int(s[1]) % len(em.orders)]  # type: ignore[call-overload]
            if kind == "cancel":
                em.cancel(target.id)
            else:
                em.replace(target.id, quantity=target.quantity + 1)
        assert abs(pf.equity - pf.equity_from_pnl) < Decimal("0.000001")
        assert account == "margin" or pf.cash >= 0  # a cash account never owes
        for sym in SYMBOLS:
            fills = [e.fill for o in em.orders for e in o.events if e.fill and e.fill.symbol == sym]
            assert pf.position(sym).quantity == sum(f.signed_quantity for f in fills)
        for o in em.orders:
            assert o.status is not OrderStatus.NEW  # accepted or rejected at once
            assert o.filled_quantity == sum(e.fill.quantity for e in o.events if e.fill)
            if o.status is not OrderStatus.REJECTED:
                assert 0 <= o.filled_quantity <= o.quantity


def test_each_fill_pays_its_own_fee_whether_it_repeats_or_changes() -> None:
    """The portfolio reuses the last fee's Decimal when the next fill's fee is the same
    float: fees that repeat, change, drop and come back are each booked as they are."""
    pf = Portfolio(10_000, "cash")
    fees = [1.0, 1.0, 2.5, 1.0, 0.0, 2.5, 2.5, 1.01]
    paid = []
    for fee in fees:
        before = pf.fees
        pf.apply_fill(Fill("o", T, "AAPL", Side.BUY, 1, 10.0, fee))
        paid.append(pf.fees - before)
    assert paid == [money(f) for f in fees]
    assert pf.fees == Decimal("11.51")
    assert pf.cash == Decimal(10_000) - 80 - Decimal("11.51")
