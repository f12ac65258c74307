"""crossover.py: a moving-average crossover on 5m bars (docs/strategies.md)."""

from __future__ import annotations

from typing import Any, ClassVar

from talipp.indicators import SMA

from sessionflow import Bar, Context, SessionStartEvent, Strategy


class Crossover(Strategy):
    """Long when the fast average of 5m closes is above the slow one, flat otherwise."""

    params: ClassVar[dict[str, Any]] = {"fast": 5, "slow": 20, "interval": 5, "quantity": 10}

    def on_session_start(self, ctx: Context, event: SessionStartEvent) -> None:
        self.fast: dict[str, SMA] = {}
        self.slow: dict[str, SMA] = {}
        for sym in ctx.symbols:  # warm up on trailing history, adjusted as of today
            closes = [b.close for b in ctx.history(sym, ctx.params["interval"])]
            self.fast[sym] = SMA(ctx.params["fast"], closes)
            self.slow[sym] = SMA(ctx.params["slow"], closes)

    def on_derived_bar(self, ctx: Context, bar: Bar, interval: int) -> None:
        if interval != ctx.params["interval"]:
            return
        fast, slow = self.fast[bar.symbol], self.slow[bar.symbol]
        fast.add(bar.close)
        slow.add(bar.close)
        if fast[-1] is None or slow[-1] is None or ctx.open_orders(bar.symbol):
            return
        held = ctx.position(bar.symbol).quantity
        if fast[-1] > slow[-1] and held == 0:
            ctx.buy(bar.symbol, ctx.params["quantity"])
        elif fast[-1] < slow[-1] and held > 0:
            ctx.sell(bar.symbol, held)


class IndependentCrossover(Crossover):
    """The crossover, declared per-symbol independent so it may run sharded."""

    per_symbol_independent = True
