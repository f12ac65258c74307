"""The portfolio's two books agree at every instant, whatever the order stream."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionflow.execution_manager import Fill, Side
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
