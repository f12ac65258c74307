"""Splits and dividends reach positions, working orders and the strategy on the ex-date.

The split is AAPL's real 7-for-1 of 2014-06-09 (LEAN minute data and factor files in
../shared/data); the dividend is imported into a copy of the demo store.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sessionflow import (
    Bar,
    Context,
    Order,
    Quote,
    SessionStartEvent,
    Settings,
    Strategy,
    run_backtest,
)
from sessionflow.cli.app import app
from sessionflow.corporate_actions import Action
from sessionflow.execution_manager.orders import money
from tests.helpers import SHARED_DATA, demo_settings, shared_data


@pytest.fixture(scope="module")
def aapl_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    shared_data("lean-minute", "aapl")
    shared_data("lean-factors")
    path = tmp_path_factory.mktemp("split") / "s.duckdb"
    runner = CliRunner()
    for args in (["lean", str(SHARED_DATA / "lean-minute" / "aapl")],
                 ["factors", str(SHARED_DATA / "lean-factors")]):  # fmt: skip
        res = runner.invoke(app, ["import", *args, "--store", str(path)])
        assert res.exit_code == 0, res.output
    yield path


class HoldThroughSplit(Strategy):
    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        self.orders: list[Order] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if not self.orders:
            self.orders.append(ctx.buy("AAPL", 10))
            self.orders.append(ctx.buy("AAPL", 10, limit=round(bar.close / 2, 2), tif="gtc"))

    def on_corporate_action(self, ctx: Context, action: Action) -> None:
        pos = ctx.position(action.symbol)
        self.seen["action"] = (action.split, action.ex_date, pos.quantity, pos.avg_price)
        self.seen["gtc"] = (self.orders[1].quantity, self.orders[1].limit)

    def on_session_start(self, ctx: Context, event: SessionStartEvent) -> None:
        self.seen[f"history_{event.session}"] = ctx.history("AAPL", 1, days=1)[-1].close
        self.seen[f"cash_{event.session}"] = ctx.portfolio.cash


def test_a_split_changes_the_position_orders_and_history_on_the_ex_date(
    aapl_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[HoldThroughSplit] = []
    real = HoldThroughSplit.__init__

    def init(self: HoldThroughSplit) -> None:
        real(self)
        made.append(self)

    monkeypatch.setattr(HoldThroughSplit, "__init__", init)
    settings = Settings.load(store_path=aapl_store, symbols=["AAPL"], start=date(2014, 6, 6),
                             end=date(2014, 6, 9), trailing_days=1)  # fmt: skip
    result = run_backtest(settings, HoldThroughSplit)
    seen = made[0].seen
    fill = result.fills[0]
    split, ex, qty, avg = seen["action"]
    assert (split, ex, qty) == (7.0, date(2014, 6, 9), 70)
    assert avg == pytest.approx(fill.price / 7)
    assert seen["gtc"][0] == 70  # the working gtc order: quantity x 7, limit / 7
    assert seen["gtc"][1] == pytest.approx(float(money(round(fill.price / 2, 2))) / 7, abs=0.01)
    # history as of 06-09 is divided by 7: the 06-06 close seen on 06-09 is ~ a seventh
    assert seen["history_2014-06-09"] == pytest.approx(seen["history_2014-06-06"] / 7, rel=0.05)
    assert seen["cash_2014-06-09"] == seen["cash_2014-06-06"] - Decimal(repr(fill.price)) * 10
    pos = result.positions[0]
    assert pos["quantity"] == 70 and 80 < pos["last_price"] < 100  # about $92 after the split
    assert result.daily_equity[-1][1] == pytest.approx(result.daily_equity[0][1], rel=0.02)


class HoldSpy(Strategy):
    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if not ctx.open_orders() and not ctx.position("SPY").quantity:
            ctx.buy("SPY", 100)


def test_a_cash_dividend_is_credited_on_the_ex_date(tmp_path: Path, demo_store_path: Path) -> None:
    store = tmp_path / "div.duckdb"
    shutil.copyfile(demo_store_path, store)
    actions = tmp_path / "actions.csv"
    actions.write_text("symbol,ex_date,split,dividend\nSPY,2024-11-26,,1.25\n")
    res = CliRunner().invoke(app, ["import", "actions", str(actions), "--store", str(store)])
    assert res.exit_code == 0, res.output
    settings = demo_settings(store, symbols=["SPY"], start=date(2024, 11, 25),
                             end=date(2024, 11, 26))  # fmt: skip
    paid = run_backtest(settings, HoldSpy)
    none = run_backtest(demo_settings(demo_store_path, symbols=["SPY"], start=date(2024, 11, 25),
                                      end=date(2024, 11, 26)), HoldSpy)  # fmt: skip
    assert paid.fills == none.fills
    assert paid.cash - none.cash == pytest.approx(125.0)  # 100 shares x $1.25
    assert paid.final_equity - none.final_equity == pytest.approx(125.0)


class QuoteTaker(Strategy):
    def __init__(self) -> None:
        self.quotes: list[Quote] = []
        self.order: Order | None = None

    def on_quote(self, ctx: Context, quote: Quote) -> None:
        self.quotes.append(quote)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if self.order is None and bar.ts.minute == 0:
            self.order = ctx.buy("AAPL", 5)


def test_on_quote_sees_stored_quotes_and_market_orders_can_fill_at_the_ask(
    aapl_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[QuoteTaker] = []
    real = QuoteTaker.__init__

    def init(self: QuoteTaker) -> None:
        real(self)
        made.append(self)

    monkeypatch.setattr(QuoteTaker, "__init__", init)
    settings = Settings.load(store_path=aapl_store, symbols=["AAPL"], start=date(2014, 6, 6),
                             end=date(2014, 6, 6), trading={"market_at_quote": True})  # fmt: skip
    result = run_backtest(settings, QuoteTaker)
    taker = made[0]
    assert len(taker.quotes) > 300 and taker.order is not None
    placed = taker.order.submitted_at
    quote = next(q for q in taker.quotes if q.ts >= placed)
    (fill,) = result.fills
    assert (fill.price, fill.time) == (quote.ask_open, quote.ts)
