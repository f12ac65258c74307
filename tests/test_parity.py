"""Parity (issue 24 item 5): a strategy live on the local servers equals its backtest.

The live side is the real path: the local data server streams the stored bars over
Alpaca's protocol to the live system, the strategy's orders go through
``AlpacaBroker`` (alpaca-py over HTTP and a websocket) to the local trading server,
which fills them on the same bars. A manual clock moves both in lockstep. Each plant
below is a bug the comparison must catch; docs/reliability.md lists them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sessionflow.check.parity_round import run_parity_round
from sessionflow.check.stores import build_check_store
from sessionflow.execution_manager.alpaca_broker import AlpacaBroker
from sessionflow.models import Bar
from sessionflow.strategy.parity import EventEntry, OrderEntry, ParityLog, compare
from sessionflow.strategy.parity_run import run_parity
from sessionflow.system_manager import Settings
from sessionflow.testing.trading_matcher import Execution, FillModelMatcher, WorkingOrder
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import cli_result
from tests.strategies import Crossover

LAG = timedelta(seconds=10)
EARLY_CLOSE = date(2024, 11, 29)


def _settings(store: Path, symbols: list[str], start: date, end: date) -> Settings:
    return Settings.load(store_path=store, symbols=symbols, start=start, end=end)


def test_the_crossover_live_equals_its_backtest_across_a_holiday_and_an_early_close(
    demo_store_path: Path,
) -> None:
    # 11-27, the 11-28 holiday, the 11-29 early close; NVDA misses 3% of its minutes
    settings = _settings(demo_store_path, ["AAPL", "NVDA"], date(2024, 11, 27), EARLY_CLOSE)
    outcome = run_parity(settings, Crossover)
    assert outcome.difference is None, str(outcome.difference)
    back, live = outcome.backtest, outcome.live
    assert outcome.sessions == 2 and len(back.orders) >= 10
    fills = [e for e in live.events if e.what[0] == "fill"]
    assert len(fills) >= 10 and [e for e in back.events if e.what[0] == "fill"] == fills
    # the one tolerance, used as named: decided on 5m bars, each live order is 10 s later
    pairs = list(zip(back.orders, live.orders, strict=True))
    assert {lv.submitted_at - b.submitted_at for b, lv in pairs} == {LAG}
    # a day order decided on 11-27's last window (live: 10 s after the close) expires at once
    close = datetime(2024, 11, 27, 21, tzinfo=UTC)
    at_close = [(b.refused, lv.refused) for b, lv in pairs if b.submitted_at == close]
    assert at_close == [("expired", "expired")], "pick a case that trades at a close"
    assert back.portfolio == live.portfolio and back.portfolio["positions"]


_MODEL_MATCH = FillModelMatcher.match


def _close_fill(
    self: FillModelMatcher, order: WorkingOrder, bar: Bar, taken: Decimal
) -> Execution | None:
    """Planted: the trading server fills at the bar's close instead of the model's price."""
    found = _MODEL_MATCH(self, order, bar, taken)
    return None if found is None else Execution(found.qty, Decimal(str(bar.close)))


def test_a_trading_server_that_fills_at_the_close_is_the_first_difference(
    demo_store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FillModelMatcher, "match", _close_fill)
    settings = _settings(demo_store_path, ["AAPL"], EARLY_CLOSE, EARLY_CLOSE)
    outcome = run_parity(settings, Crossover)
    diff = outcome.difference
    assert diff is not None and diff.where == "events" and diff.index == 0
    assert isinstance(diff.backtest, EventEntry) and isinstance(diff.live, EventEntry)
    assert diff.backtest.what[3] != diff.live.what[3]  # the fill price
    assert "first difference in events #0" in str(diff)


def test_fills_booked_an_instant_late_are_a_difference(
    demo_store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted: the broker hands fills over only at the next upkeep check that announces
    something, not with the bar: same prices, booked late. Only the order time has a
    tolerance."""
    from sessionflow.events import BarSliceEvent

    def late(self: AlpacaBroker, event: Any) -> None:
        if not isinstance(event, BarSliceEvent):
            self.drain()

    monkeypatch.setattr(AlpacaBroker, "on_market", late)
    settings = _settings(demo_store_path, ["AAPL"], EARLY_CLOSE, EARLY_CLOSE)
    diff = run_parity(settings, Crossover).difference
    assert diff is not None and diff.where == "events"
    assert isinstance(diff.live, EventEntry) and isinstance(diff.backtest, EventEntry)
    assert diff.live.heard > diff.backtest.heard  # at the next check that announced bars
    assert diff.live.what == diff.backtest.what


def _order(seq: int, at: datetime, qty: int = 10) -> OrderEntry:
    return OrderEntry(seq, at, ("AAPL", "buy", "market", qty, None, None, "day"))


def test_compare_allows_the_decision_lag_and_nothing_else() -> None:
    t = datetime(2024, 11, 29, 14, 35, tzinfo=UTC)
    fill = EventEntry(t + timedelta(minutes=1), 0, ("fill", t, 10, 226.98, 0.0))
    pf = {"cash": "97730.20", "equity": "100000.00", "fees": "0.0", "positions": {}}
    back = ParityLog([_order(0, t)], [fill], pf)

    def live(**change: Any) -> ParityLog:
        return dataclasses.replace(back, **change)

    assert compare(back, live(orders=[_order(0, t + LAG)]), LAG) is None
    for orders in ([_order(0, t + LAG + timedelta(microseconds=1))], [_order(0, t - LAG)],
                   [_order(0, t + LAG, qty=11)], [], [_order(0, t), _order(1, t)]):  # fmt: skip
        diff = compare(back, live(orders=orders), LAG)
        assert diff is not None and diff.where == "orders", orders
    refused = [dataclasses.replace(_order(0, t), refused="rejected")]
    assert compare(back, live(orders=refused), LAG) is not None
    late = dataclasses.replace(fill, heard=fill.heard + timedelta(seconds=1))
    assert compare(back, live(events=[late]), LAG) is not None
    assert compare(back, live(events=[fill, fill]), LAG) is not None
    diff = compare(back, live(portfolio={**pf, "cash": "97730.21"}), LAG)
    assert diff is not None and diff.where == "portfolio cash"


def test_the_parity_command_says_equal_or_names_the_difference(
    demo_store_path: Path, tmp_path: Path
) -> None:
    spec = str(Path(__file__).parent / "strategies.py") + ":Crossover"
    base = ["parity", "--store", demo_store_path, "--symbols", "SPY", "--start", "2024-11-29",
            "--end", "2024-11-29"]  # fmt: skip
    ok = cli_result(*base, "--strategy", spec)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[-1] == "parity: equal"
    reader = tmp_path / "reader.py"
    reader.write_text(
        "from sessionflow import Strategy\n"
        "class R(Strategy):\n"
        "    def on_derived_bar(self, ctx, bar, interval):\n"
        "        if not ctx.portfolio.positions and not ctx.open_orders():\n"
        "            ctx.buy(bar.symbol, 1 + ctx.now.second)\n"
    )
    bad = cli_result(*base, "--strategy", f"{reader}:R", "--json")
    assert bad.exit_code == 1
    assert '"equal": false' in bad.stdout and "first difference in orders #0" in bad.stdout
    missing = cli_result(*base, "--strategy", f"{tmp_path / 'none.py'}:R")
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1


def test_the_check_round_passes_and_fails_on_a_close_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "check.duckdb"
    build_check_store(store, ExchangeCalendar()).close()
    good = run_parity_round(tmp_path / "ok", store, ["AAA", "BBB"], EARLY_CLOSE, EARLY_CLOSE)
    assert good.status == "pass", good.differences
    assert "orders" in good.compared and "fills" in good.compared
    monkeypatch.setattr(FillModelMatcher, "match", _close_fill)
    bad = run_parity_round(tmp_path / "bad", store, ["AAA"], EARLY_CLOSE, EARLY_CLOSE)
    assert bad.status == "fail" and "first difference in events" in bad.differences[0]
