"""The parity round: a strategy live on the local servers equals its backtest, event by event.

The check store's sessions (one an early close, with gaps) are backtested and then
replayed live (``strategy.parity_run``: the local data and trading servers, alpaca-py,
``AlpacaBroker``) with a probe strategy that uses every order type the trading server
serves and both decision paths: on 1m bars (no decision lag) and on 5m bars (decided
at the upkeep check, ``bar_grace_seconds`` later). The round passes when the two
event logs agree under the one documented tolerance (docs/live.md, "Parity").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from sessionflow.check.rounds import Findings, RoundResult, judged
from sessionflow.models import Bar
from sessionflow.store import open_store
from sessionflow.strategy import Context, Strategy
from sessionflow.strategy.parity_run import run_parity
from sessionflow.system_manager import Settings


class ParityProbe(Strategy):
    """Market orders on 5m bars, limit and stop exits on 1m bars, in turn per symbol."""

    params: ClassVar[dict[str, Any]] = {"quantity": 7}

    def on_derived_bar(self, ctx: Context, bar: Bar, interval: int) -> None:
        if interval != 5 or ctx.open_orders(bar.symbol):
            return
        held = ctx.position(bar.symbol).quantity
        if held == 0 and bar.close > bar.open:
            ctx.buy(bar.symbol, ctx.params["quantity"])
        elif held > 0 and bar.close < bar.open:
            ctx.sell(bar.symbol, held)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        held = ctx.position(bar.symbol).quantity
        if held <= 0 or ctx.open_orders(bar.symbol) or bar.ts.minute % 7:
            return
        if bar.ts.minute % 2:  # take profit a little above, or stop out below
            ctx.sell(bar.symbol, held, limit=round(bar.close * 1.001, 2))
        else:
            ctx.sell(bar.symbol, held, stop=round(bar.close * 0.999, 2))


def run_parity_round(
    workdir: Path, store_path: Path, symbols: Sequence[str], start: date, end: date
) -> RoundResult:
    def body(found: Findings) -> None:
        settings = Settings.load(store_path=store_path, symbols=list(symbols), start=start, end=end)
        store = open_store(store_path, read_only=True)
        try:
            outcome = run_parity(settings, ParityProbe, store=store, workdir=workdir)
        finally:
            store.close()
        fills = sum(e.what[0] == "fill" for e in outcome.backtest.events)
        found.saw(
            f"{outcome.sessions} sessions, {outcome.bars} bars streamed live: "
            f"{len(outcome.backtest.orders)} orders, {fills} fills and the final "
            f"portfolio against the backtest (decision lag {outcome.decision_lag.seconds} s)"
        )
        if not outcome.backtest.orders:
            found.differ(["the probe placed no orders: nothing was compared"])
        if outcome.difference is not None:
            found.differ([str(outcome.difference)])

    workdir.mkdir(parents=True, exist_ok=True)
    return judged("parity", body)


__all__ = ["ParityProbe", "run_parity_round"]
