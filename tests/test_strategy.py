"""Strategies: the order of callbacks, params, loading, and a failing strategy."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

import sessionflow
from sessionflow import (
    Bar,
    BarSliceEvent,
    Context,
    Fill,
    Order,
    OrderStatus,
    SessionReport,
    SessionStartEvent,
    Strategy,
    run_backtest,
)
from sessionflow.strategy import StrategyLoadError, load_strategy, parse_params
from tests.helpers import demo_settings

DAY = {"start": date(2024, 11, 26), "end": date(2024, 11, 26)}


class Recording(Strategy):
    """Buys SPY on its first bar; records every callback with the clock."""

    params: ClassVar[dict[str, Any]] = {"quantity": 3}

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime, str]] = []

    def _note(self, ctx: Context, name: str, what: str = "") -> None:
        self.calls.append((name, ctx.now, what))

    def on_start(self, ctx: Context) -> None:
        self._note(ctx, "start")

    def on_session_start(self, ctx: Context, event: SessionStartEvent) -> None:
        self._note(ctx, "session_start")

    def on_bars(self, ctx: Context, event: BarSliceEvent) -> None:
        self._note(ctx, "bars", str(len(event.bars)))

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if bar.symbol == "SPY":
            self._note(ctx, "bar", bar.symbol)
            if not any(c[0] == "order" for c in self.calls):
                ctx.buy("SPY", ctx.params["quantity"])

    def on_derived_bar(self, ctx: Context, bar: Bar, interval: int) -> None:
        if bar.symbol == "SPY":
            self._note(ctx, "derived", str(interval))

    def on_order(self, ctx: Context, order: Order) -> None:
        self._note(ctx, "order", order.status.value)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self._note(ctx, "fill", f"{fill.quantity}@{fill.price}")

    def on_session_end(self, ctx: Context, report: SessionReport) -> None:
        self._note(ctx, "session_end")

    def on_stop(self, ctx: Context) -> None:
        self._note(ctx, "stop")


def test_callbacks_run_in_the_documented_order(
    demo_store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bars (columnar, then per bar), then the order and fill events of the instant, then
    derived bars announced at the same time; an order fills only at a later instant."""
    made: list[Recording] = []
    real_init = Recording.__init__

    def init(self: Recording) -> None:
        real_init(self)
        made.append(self)

    monkeypatch.setattr(Recording, "__init__", init)
    result = run_backtest(demo_settings(demo_store_path, symbols=["SPY"], **DAY), Recording)
    calls = made[0].calls
    names = [c[0] for c in calls]
    assert names[:2] == ["start", "session_start"] and names[-2:] == ["session_end", "stop"]
    first_bar = names.index("bar")
    t0 = calls[first_bar][1]
    # the instant the order is placed: bars (columnar, then per bar), then its acceptance
    assert names[first_bar - 1 : first_bar + 2] == ["bars", "bar", "order"]
    assert calls[first_bar + 1][2] == "accepted" and calls[first_bar + 1][1] == t0
    # the next instant: bars first, then the fill's order event and the fill
    nxt = names[first_bar + 2 : first_bar + 6]
    assert nxt == ["bars", "bar", "order", "fill"] and calls[first_bar + 4][1] > t0
    fill = result.fills[0]
    assert calls[first_bar + 5][2] == f"3@{fill.price}"
    # derived bars announced at an instant come after its 1m bars and order events
    k = names.index("derived")
    assert names[k - 2 : k] == ["bars", "bar"] and calls[k][1] == calls[k - 1][1]
    assert result.complete and result.orders[0].status is OrderStatus.FILLED


def test_a_backtest_is_deterministic_fill_for_fill(demo_store_path: Path) -> None:
    from tests.strategies import Crossover

    settings = demo_settings(demo_store_path, start=date(2024, 11, 25), end=date(2024, 11, 27))
    a = run_backtest(settings, Crossover, commission="per_share:0.005,min=1,max=0.01")
    b = run_backtest(settings, Crossover, commission="per_share:0.005,min=1,max=0.01")
    assert a.fills and a.fills == b.fills and a.final_equity == b.final_equity
    assert a.equity_curve == b.equity_curve and a.statistics == b.statistics
    assert round(a.final_equity, 2) == a.final_equity  # cents exact with cent commissions


class Boom(Strategy):
    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if not ctx.open_orders() and not ctx.position("SPY").quantity:
            ctx.buy("SPY", 1, limit=1.0, tif="gtc")  # never fills: open when the run stops
        if bar.ts.hour == 15:
            raise ZeroDivisionError("user bug")


def test_a_strategy_exception_stops_the_run_with_its_own_traceback(
    demo_store_path: Path,
) -> None:
    result = run_backtest(demo_settings(demo_store_path, symbols=["SPY"], **DAY), Boom)
    assert not result.complete and not result.interrupted
    assert result.error is not None and "on_bar raised ZeroDivisionError: user bug" in result.error
    assert result.traceback is not None
    assert result.traceback.startswith("Traceback") and "test_strategy.py" in result.traceback
    package = str(Path(sessionflow.__file__).parent)  # not the clone's folder, named anything
    assert package not in result.traceback and "test_strategy.py" in result.traceback
    assert [o.status for o in result.orders] == [OrderStatus.CANCELLED]
    assert result.equity_curve[-1][0].hour == 15  # results up to the failure


def test_params_parse_by_the_type_of_their_default() -> None:
    class P(Strategy):
        params: ClassVar[dict[str, Any]] = {"n": 5, "x": 0.5, "name": "a", "on": False}

    assert parse_params(P, ["n=7", "x=1e-3", "name=b c", "on=yes"]) == {
        "n": 7, "x": 0.001, "name": "b c", "on": True,
    }  # fmt: skip
    for bad, why in (("n=1.5", "not an int"), ("on=maybe", "not a bool"), ("z=1", "no parameter"),
                     ("n", "NAME=VALUE")):  # fmt: skip
        with pytest.raises(StrategyLoadError, match=why):
            parse_params(P, [bad])


def test_loading_names_the_file_line_or_class_that_is_wrong(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(
        "from sessionflow import Strategy\nclass S(Strategy):\n    pass\nclass N:\n    pass\n"
    )
    assert load_strategy(f"{good}:S").__name__ == "S"
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent("""\
        import sessionflow
        x = 1
        raise RuntimeError("broken at import")
    """)
    )
    syntax = tmp_path / "syntax.py"
    syntax.write_text("class S(:\n")
    cases = {
        f"{good}:N": "N is not a sessionflow.Strategy subclass",
        f"{good}:Missing": "has no Missing",
        f"{tmp_path}/nope.py:S": "no file",
        str(good): "use FILE.py:Class",
        f"{bad}:S": "bad.py:3 does not load: RuntimeError: broken at import",
        f"{syntax}:S": "syntax.py:1 does not load: SyntaxError",
    }
    for spec, why in cases.items():
        with pytest.raises(
            StrategyLoadError, match=why.replace(".", r"\.").replace("(", r"\(")
        ) as err:
            load_strategy(spec)
        assert "\n" not in str(err.value)


class AtTheClose(Strategy):
    """A day limit resting below the market all session, then orders on the last bar."""

    open_at_last_bar: ClassVar[list[int]] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if not ctx.open_orders() and not ctx.portfolio.positions and bar.ts.minute == 30:
            ctx.buy("SPY", 1, limit=1.0)
        if ctx.now == datetime(2024, 11, 29, 18, tzinfo=UTC):  # the early close
            self.open_at_last_bar.append(len(ctx.open_orders()))
            ctx.buy("SPY", 2)
            ctx.buy("SPY", 3, tif="gtc")


def test_a_day_order_placed_on_the_last_bar_expires_at_once_and_a_gtc_one_lives_on(
    demo_store_path: Path,
) -> None:
    """At the close (docs/live.md, Parity): a resting day order is still open on the last
    bar and expires with the session's end; a day order decided on that bar expires at
    once (live it would reach the venue after the close); a gtc one meets the next open."""
    settings = demo_settings(demo_store_path, symbols=["SPY"], start=date(2024, 11, 29),
                             end=date(2024, 12, 2))  # fmt: skip
    result = run_backtest(settings, AtTheClose)
    resting, day, gtc = result.orders[:3]
    close = datetime(2024, 11, 29, 18, tzinfo=UTC)
    assert AtTheClose.open_at_last_bar == [1]
    assert resting.status is OrderStatus.EXPIRED and resting.updated_at == close
    assert day.status is OrderStatus.EXPIRED and day.reason == "day order placed at the close"
    assert [e.status for e in day.events] == [OrderStatus.EXPIRED]
    assert gtc.status is OrderStatus.FILLED
    assert result.fills[0].time == datetime(2024, 12, 2, 14, 30, tzinfo=UTC)


class AfterClose(Strategy):
    def on_session_end(self, ctx: Context, report: SessionReport) -> None:
        ctx.buy("SPY", 1, limit=1.0)  # a day order placed after the close


def test_a_day_order_placed_after_the_close_is_for_the_next_session(
    demo_store_path: Path,
) -> None:
    settings = demo_settings(demo_store_path, symbols=["SPY"], start=date(2024, 11, 26),
                             end=date(2024, 11, 27))  # fmt: skip
    first, last = run_backtest(settings, AfterClose).orders
    assert first.status is OrderStatus.EXPIRED
    assert first.updated_at is not None and first.updated_at.date() == date(2024, 11, 27)
    assert last.status is OrderStatus.REJECTED and (last.reason or "").startswith("after_last")
