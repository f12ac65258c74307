"""dash_strategy.py: a small strategy for the dashboard tests (tests/test_web_trading.py).

It buys ``quantity`` of every symbol on its first bar and sells half of it ``hold``
bars later (all of it for the symbols in ``close_out``), and leaves a gtc limit buy far
below the market working, so a run has fills both ways, an open position and an open
order from its first minutes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sessionflow import Bar, Context, Strategy


class BuyHoldAndBid(Strategy):
    params: ClassVar[dict[str, Any]] = {
        "quantity": 10,
        "hold": 3,
        "bid_fraction": 0.5,
        "close_out": "",
    }

    def on_start(self, ctx: Context) -> None:
        self.seen: dict[str, int] = {}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        n = self.seen.get(bar.symbol, 0)
        self.seen[bar.symbol] = n + 1
        if n == 0:
            ctx.buy(bar.symbol, ctx.params["quantity"])
            bid = round(bar.close * ctx.params["bid_fraction"], 2)
            ctx.buy(bar.symbol, 1, limit=bid, tif="gtc")
        elif n == ctx.params["hold"]:
            everything = bar.symbol in ctx.params["close_out"].split(",")
            ctx.sell(bar.symbol, ctx.position(bar.symbol).quantity // (1 if everything else 2))


class FailsOnBar(BuyHoldAndBid):
    """Raises on its ``fail_at``-th bar (the run must stop cleanly, orders cancelled)."""

    params: ClassVar[dict[str, Any]] = {**BuyHoldAndBid.params, "fail_at": 5}

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        if sum(self.seen.values()) >= ctx.params["fail_at"]:
            raise ZeroDivisionError("planted failure")


class NotAStrategy:
    pass
