"""The fill model's rules, one test per row of the table in docs/strategies.md."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sessionflow.events import QuoteEvent
from sessionflow.execution_manager import FillModel, OrderStatus
from sessionflow.execution_manager.commission import (
    Percentage,
    PerOrder,
    PerShare,
    ZeroCommission,
    parse_commission,
)
from sessionflow.execution_manager.slippage import BasisPoints, Ticks, parse_slippage
from sessionflow.models import Quote
from tests.trading_helpers import MIN, T0, Book, order


def test_market_order_fills_at_the_next_bar_open() -> None:
    book = Book()
    book.submit(order(at=T0))
    [fill] = book.bar(T0, 100.0, 101.0, 99.0, 100.5)
    assert (fill.price, fill.quantity, fill.time) == (100.0, 100, T0)
    assert book.statuses() == [OrderStatus.ACCEPTED, OrderStatus.FILLED]


def test_no_fill_against_a_bar_that_opened_before_the_order() -> None:
    book = Book()
    book.submit(order(at=T0 + MIN))  # decided when the 14:30 bar arrived (14:31)
    assert book.bar(T0, 100.0, 101.0, 99.0, 100.5) == []  # the 14:30 bar: already known
    [fill] = book.bar(T0 + MIN, 102.0, 103.0, 101.0, 102.5)
    assert fill.price == 102.0 and fill.time == T0 + MIN


@pytest.mark.parametrize(
    ("side", "limit", "bar", "price"),
    [
        ("buy", 101.0, (100.0, 102.0, 99.0), 100.0),  # opens below the limit: the open
        ("buy", 99.5, (100.0, 102.0, 99.0), 99.5),  # trades down through it: the limit
        ("buy", 98.0, (100.0, 102.0, 99.0), None),  # never reaches it: no fill
        ("sell", 99.0, (100.0, 102.0, 99.0), 100.0),  # opens above the limit: the open
        ("sell", 101.5, (100.0, 102.0, 99.0), 101.5),  # trades up through it: the limit
        ("sell", 103.0, (100.0, 102.0, 99.0), None),
    ],
)
def test_limit_order_fills_at_the_open_when_it_gaps_through_else_at_the_limit(
    side: str, limit: float, bar: tuple[float, float, float], price: float | None
) -> None:
    book = Book()
    book.submit(order(side, limit=limit))
    fills = book.bar(T0, *bar, bar[0])
    assert [f.price for f in fills] == ([] if price is None else [price])


@pytest.mark.parametrize(
    ("side", "stop", "bar", "price"),
    [
        ("buy", 99.0, (100.0, 102.0, 99.0), 100.0),  # opens above the stop: the open
        ("buy", 101.0, (100.0, 102.0, 99.0), 101.0),  # trades up through it: the stop
        ("buy", 103.0, (100.0, 102.0, 99.0), None),
        ("sell", 101.0, (100.0, 102.0, 99.0), 100.0),  # opens below the stop: the open
        ("sell", 99.5, (100.0, 102.0, 99.0), 99.5),
        ("sell", 98.0, (100.0, 102.0, 99.0), None),
    ],
)
def test_stop_order_fills_at_the_open_when_it_gaps_through_else_at_the_stop(
    side: str, stop: float, bar: tuple[float, float, float], price: float | None
) -> None:
    book = Book()
    book.submit(order(side, stop=stop))
    fills = book.bar(T0, *bar, bar[0])
    assert [f.price for f in fills] == ([] if price is None else [price])


def test_stop_limit_triggered_inside_a_bar_fills_there_only_at_a_stop_within_the_limit() -> None:
    book = Book()
    book.submit(order("buy", stop=101.0, limit=101.5))
    [fill] = book.bar(T0, 100.0, 102.0, 99.0, 101.8)
    assert fill.price == 101.0  # the stop price, inside the limit
    book = Book()
    book.submit(order("buy", stop=101.0, limit=100.5))  # limit below the stop
    assert book.bar(T0, 100.0, 102.0, 99.0, 101.8) == []  # triggered; the path after is unknown
    [fill] = book.bar(T0 + MIN, 101.0, 101.2, 100.2, 100.4)  # now a limit order: low <= 100.5
    assert fill.price == 100.5


def test_stop_limit_gapping_through_its_stop_works_as_a_limit_on_the_same_bar() -> None:
    book = Book()
    book.submit(order("sell", stop=100.0, limit=98.0))
    [fill] = book.bar(T0, 99.0, 99.5, 97.0, 97.5)  # opens below the stop, above the limit
    assert fill.price == 99.0
    book = Book()
    book.submit(order("sell", stop=100.0, limit=99.8))
    [fill] = book.bar(T0, 99.0, 100.5, 98.0, 100.0)  # opens below the limit: high reaches it
    assert fill.price == 99.8


def test_volume_cap_fills_part_and_leaves_the_rest_working() -> None:
    book = Book(FillModel(0.025))
    book.submit(order(qty=100))
    [first] = book.bar(T0, 100.0, 101.0, 99.0, 100.5, v=2_000)  # 2.5% of 2000 = 50
    [second] = book.bar(T0 + MIN, 101.0, 101.0, 100.0, 100.5, v=10_000)
    assert (first.quantity, second.quantity) == (50, 50)
    assert book.statuses() == [
        OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
    ]  # fmt: skip


def test_volume_cap_is_shared_by_the_orders_on_one_bar_in_submission_order() -> None:
    book = Book(FillModel(0.1))
    book.submit(order(qty=80, oid="o-1"))
    book.submit(order(qty=80, oid="o-2"))
    fills = book.bar(T0, 100.0, 101.0, 99.0, 100.5, v=1_000)  # 100 shares for both
    assert [(f.order_id, f.quantity) for f in fills] == [("o-1", 80), ("o-2", 20)]


def test_volume_cap_share_is_exact_not_a_float_product() -> None:
    assert FillModel(0.29).capacity(100) == 29  # 0.29 * 100 == 28.999999999999996 in floats


def test_gap_filled_and_extended_hours_bars_never_fill() -> None:
    book = Book()
    book.submit(order())
    assert book.bar(T0, 100.0, 100.0, 100.0, 100.0, v=1_000, filled=True) == []
    assert book.bar(T0, 100.0, 101.0, 99.0, 100.5, regular=False) == []
    assert len(book.bar(T0 + MIN, 100.0, 101.0, 99.0, 100.5)) == 1


def test_day_order_expires_at_the_session_close_and_gtc_meets_the_next_open() -> None:
    close = T0 + 210 * MIN  # an early close
    book = Book()
    book.start(T0, close)
    book.submit(order("buy", limit=95.0, oid="o-1"))
    book.submit(order("buy", limit=95.0, tif="gtc", oid="o-2"))
    book.end(close + 4 * 60 * MIN)  # the replay's end of day is later than the close
    expired = [e for e in book.events if e.status is OrderStatus.EXPIRED]
    assert [(e.order_id, e.time) for e in expired] == [("o-1", close)]
    nxt = T0 + 24 * 60 * MIN
    [fill] = book.bar(nxt, 94.0, 96.0, 93.0, 95.0)  # gaps below the limit overnight
    assert (fill.order_id, fill.price) == ("o-2", 94.0)


def test_slippage_moves_prices_against_the_trader_and_never_past_a_limit() -> None:
    book = Book(slippage=BasisPoints(Decimal(10)))
    book.submit(order("buy"))
    book.submit(order("sell", oid="o-2"))
    book.submit(order("buy", limit=100.05, oid="o-3"))
    fills = book.bar(T0, 100.0, 101.0, 99.0, 100.5)
    assert [f.price for f in fills] == [100.1, 99.9, 100.05]
    book = Book(slippage=Ticks(2))
    book.submit(order("sell"))
    assert [f.price for f in book.bar(T0, 100.0, 101.0, 99.0, 100.5)] == [99.98]


def test_per_share_commission_has_a_minimum_and_a_cap_per_order_across_partial_fills() -> None:
    model = PerShare(Decimal("0.005"), Decimal("1.00"), Decimal("0.01"))
    assert model.order_commission(100, Decimal(10_000)) == Decimal("1.00")  # minimum
    assert model.order_commission(1_000, Decimal(100_000)) == Decimal("5.00")
    assert model.order_commission(1_000, Decimal(200)) == Decimal("2.00")  # 1% of value
    book = Book(FillModel(0.1), commission=model)
    book.submit(order(qty=400))
    fees = [f.commission for f in book.bar(T0, 10.0, 10.0, 10.0, 10.0, v=2_000)]
    fees += [f.commission for f in book.bar(T0 + MIN, 10.0, 10.0, 10.0, 10.0, v=2_000)]
    assert fees == [1.0, 1.0]  # 200 shares: the $1 minimum; 400: $2 in all


def test_per_order_percentage_and_zero_commission() -> None:
    assert PerOrder(Decimal(1)).order_commission(5, Decimal(500)) == Decimal("1.00")
    assert Percentage(Decimal("0.1")).order_commission(10, Decimal("1234.5")) == Decimal("1.23")
    assert ZeroCommission().order_commission(10, Decimal(100)) == 0


def test_specs_parse_and_bad_ones_name_the_accepted_forms() -> None:
    assert parse_commission("per_share:0.005,min=1,max=0.01") == PerShare(
        Decimal("0.005"), Decimal("1.0"), Decimal("0.01")
    )
    assert parse_commission("percent:0.1") == Percentage(Decimal("0.1"))
    assert parse_slippage("bps:5") == BasisPoints(Decimal("5.0"))
    assert parse_slippage("ticks:2,tick=0.05") == Ticks(2, Decimal("0.05"))
    for bad in ("per_share", "per_share:x", "percent:-1", "flat:3", "per_share:1,foo=2"):
        with pytest.raises(ValueError, match="per_share:RATE"):
            parse_commission(bad)
    for bad in ("bps", "bps:-1", "ticks:1.5", "ticks:1,size=2"):
        with pytest.raises(ValueError, match="bps:N"):
            parse_slippage(bad)


def test_market_orders_can_fill_at_the_quote_ask_or_bid_instead_of_the_bar_open() -> None:
    book = Book(FillModel(None, market_at_quote=True))
    book.submit(order("buy", oid="o-1"))
    book.submit(order("sell", oid="o-2"))
    book.submit(order("buy", limit=101.0, oid="o-3"))
    fills = book.bar(T0, 100.0, 101.0, 99.0, 100.5)
    assert [f.order_id for f in fills] == ["o-3"]  # only the limit order meets the bar
    early = Quote("SPY", T0 - MIN, 99.0, 99.0, 99.0, 99.0, 5, 99.1, 99.1, 99.1, 99.1, 5)
    book.broker.on_market(QuoteEvent(early, T0))  # opened before the orders: too early
    quote = Quote("SPY", T0, 100.01, 100.2, 99.9, 100.1, 3, 100.03, 100.3, 100.0, 100.2, 4)
    book.broker.on_market(QuoteEvent(quote, T0 + MIN))
    filled = [e.fill for e in book.events if e.fill is not None][1:]
    assert [(f.order_id, f.price, f.time) for f in filled] == [
        ("o-1", 100.03, T0), ("o-2", 100.01, T0),
    ]  # fmt: skip
