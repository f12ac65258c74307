"""The parity strategies on sessionflow's Strategy API: the twins of
``peers.trading_backtrader``'s, decision for decision.

- ``Crossover``: per bar, ``on_derived_bar`` for the 5m series, the crossover state
  of ``CrossState`` per symbol; market orders gtc, so a signal on the session's last 5m
  bar fills at the next session's open, as backtrader's market orders (which never
  expire) do.
- ``CrossoverColumnar``: the same decisions from the columnar ``on_bars`` slices, with
  per-symbol state in numpy arrays (rows from ``BarSliceEvent.rows``): a 5m window's
  close is the close of its last 1m bar, taken when the slice at the window's end
  arrives, which is when the engine announces the 5m bar; the window's orders go out
  as one burst (``ctx.submit_many``, positions from ``ctx.quantities()``), in row
  order, the orders ``ctx.buy``/``ctx.sell`` per symbol would make.
- ``Bracket``: a day limit entry below the 5m close; when it fills, a gtc stop-loss and
  a gtc take-profit, the one that fills cancels the other (sessionflow has no
  one-cancels-other order, so ``on_fill`` does it). Both exits sell the position, so
  the second is a short sale until the first fills: run it with a margin account that
  allows shorting (tests/test_parity_backtrader.py does).
- ``SplitHold``: buy on the first 5m bar, hold across the sessions (the portfolio
  applies splits and dividends), sell ``sell_fraction`` on the ``sell_after``-th 5m
  bar of ``last_day``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from peers.trading_data import CrossState
from sessionflow import Strategy
from sessionflow.events import BarSliceEvent, SessionStartEvent
from sessionflow.models import Bar, to_us

FIVE_US = 5 * 60_000_000


class Crossover(Strategy):
    params: ClassVar[dict[str, Any]] = {"fast": 5, "slow": 20, "quantity": 10}
    per_symbol_independent = True

    def on_start(self, ctx: Any) -> None:
        self.state: dict[str, CrossState] = {}

    def on_derived_bar(self, ctx: Any, bar: Bar, interval: int) -> None:
        if interval != 5:
            return
        p = ctx.params
        state = self.state.get(bar.symbol)
        if state is None:
            state = self.state[bar.symbol] = CrossState(p["fast"], p["slow"])
        signal = state.update(bar.close)
        if signal is None:
            return
        held = ctx.position(bar.symbol).quantity
        if signal and held == 0:
            ctx.buy(bar.symbol, p["quantity"], tif="gtc")
        elif not signal and held > 0:
            ctx.sell(bar.symbol, held, tif="gtc")


class CrossoverPerBar(Crossover):
    """``Crossover`` that also takes every 1m bar (``on_bar``: each symbol's last close,
    as a strategy checking stops or marking per bar would): the per-bar callback path
    the strategy benchmark measures. Same decisions, same orders."""

    def on_start(self, ctx: Any) -> None:
        super().on_start(ctx)
        self.last: dict[str, float] = {}

    def on_bar(self, ctx: Any, bar: Bar) -> None:
        self.last[bar.symbol] = bar.close


class CrossoverColumnar(Strategy):
    """``Crossover`` over columns: one numpy pass per 5m window for every symbol."""

    params: ClassVar[dict[str, Any]] = {"fast": 5, "slow": 20, "quantity": 10}
    per_symbol_independent = True

    def on_start(self, ctx: Any) -> None:
        n, slow = len(ctx.symbols), ctx.params["slow"]
        self.names = list(ctx.symbols)
        self.cents = np.zeros((n, slow), dtype=np.int64)  # ring of the last 5m closes
        self.count = np.zeros(n, dtype=np.int64)
        self.last = np.zeros(n, dtype=np.float64)  # last 1m close in the open window
        self.touched = np.zeros(n, dtype=bool)
        self.above = np.full(n, -1, dtype=np.int8)  # -1: not known yet
        self.back = np.arange(ctx.params["fast"], dtype=np.int64)
        self.end_us = self.close_us = 0

    def on_session_start(self, ctx: Any, event: SessionStartEvent) -> None:
        self.close_us = to_us(event.close)
        self.end_us = min(to_us(event.open) + FIVE_US, self.close_us)

    def on_bars(self, ctx: Any, event: BarSliceEvent) -> None:
        t = to_us(event.time)
        while self.end_us and t > self.end_us:  # no slice at a window's end
            self._window(ctx)
        assert event.rows is not None
        self.last[event.rows] = event.bars.close
        self.touched[event.rows] = True
        if t == self.end_us:
            self._window(ctx)

    def _window(self, ctx: Any) -> None:
        end = self.end_us
        self.end_us = 0 if end >= self.close_us else min(end + FIVE_US, self.close_us)
        rows = np.flatnonzero(self.touched)
        self.touched[rows] = False
        slow, fast = self.cents.shape[1], len(self.back)
        self.cents[rows, self.count[rows] % slow] = np.rint(self.last[rows] * 100)
        self.count[rows] += 1
        rows = rows[self.count[rows] >= slow]
        if not len(rows):
            return
        ring = self.cents[rows]
        newest = (self.count[rows, None] - 1 - self.back) % slow
        fast_sum = np.take_along_axis(ring, newest, axis=1).sum(axis=1)
        above = (fast_sum * slow > ring.sum(axis=1) * fast).astype(np.int8)
        before = self.above[rows]
        self.above[rows] = above
        flips = rows[(before >= 0) & (before != above)]
        if not len(flips):
            return
        # the symbols whose trend turned: buy where it turned up and nothing is held,
        # sell what is held where it turned down; one burst of orders, in row order
        held = ctx.quantities()[flips]
        up = self.above[flips] == 1
        act = (up & (held == 0)) | (~up & (held > 0))
        if act.any():
            buy = up[act]
            ctx.submit_many(
                [self.names[r] for r in flips[act].tolist()],
                ["buy" if b else "sell" for b in buy.tolist()],
                np.where(buy, ctx.params["quantity"], held[act]),
                tif="gtc",
            )


class Bracket(Strategy):
    params: ClassVar[dict[str, Any]] = {
        "entry_bps": 10.0,
        "stop_bps": 20.0,
        "take_bps": 20.0,
        "quantity": 10,
    }
    per_symbol_independent = True

    def on_start(self, ctx: Any) -> None:
        self.exits: dict[str, tuple[float, float]] = {}  # working entry id -> (stop, take)
        self.oco: dict[str, str] = {}

    def on_derived_bar(self, ctx: Any, bar: Bar, interval: int) -> None:
        if interval != 5:
            return
        sym, p = bar.symbol, ctx.params
        # blocked while holding or while an entry works; a flat symbol's leftover exit
        # (its sibling filled this instant) was cancelled by on_fill, as backtrader's
        # one-cancels-other does
        if ctx.position(sym).quantity or any(o.id in self.exits for o in ctx.open_orders(sym)):
            return
        limit = round(bar.close * (1 - p["entry_bps"] / 1e4), 2)
        stop = round(limit * (1 - p["stop_bps"] / 1e4), 2)
        take = round(limit * (1 + p["take_bps"] / 1e4), 2)
        order = ctx.buy(sym, p["quantity"], limit=limit, tif="day")
        self.exits[order.id] = (stop, take)

    def on_fill(self, ctx: Any, fill: Any) -> None:
        if fill.order_id in self.exits:
            stop, take = self.exits.pop(fill.order_id)
            q = ctx.params["quantity"]
            s = ctx.sell(fill.symbol, q, stop=stop, tif="gtc")
            t = ctx.sell(fill.symbol, q, limit=take, tif="gtc")
            self.oco[s.id], self.oco[t.id] = t.id, s.id
        elif fill.order_id in self.oco:
            other = self.oco.pop(fill.order_id)
            self.oco.pop(other, None)
            ctx.cancel(other)


class SplitHold(Strategy):
    params: ClassVar[dict[str, Any]] = {
        "quantity": 10,
        "sell_after": 6,
        "sell_fraction": 0.5,
        "last_day": "",
    }

    def on_start(self, ctx: Any) -> None:
        self.bought: set[str] = set()
        self.count: dict[str, int] = {}

    def on_derived_bar(self, ctx: Any, bar: Bar, interval: int) -> None:
        if interval != 5:
            return
        sym, p = bar.symbol, ctx.params
        if sym not in self.bought:
            self.bought.add(sym)
            ctx.buy(sym, p["quantity"])
            return
        if bar.ts.date().isoformat() != p["last_day"]:
            return
        self.count[sym] = self.count.get(sym, 0) + 1
        if self.count[sym] == p["sell_after"]:
            size = int(ctx.position(sym).quantity * p["sell_fraction"])
            if size:
                ctx.sell(sym, size)
