"""The parity strategies written for backtrader, and how backtrader is set up to agree.

Three strategies, each the twin of one in ``peers.trading_sessionflow``:

- ``Crossover``: on each 5m bar, a fast and a slow simple moving average of the 5m
  closes (``CrossState``, in integer cents, so both engines take the same decision on
  a tie); when the fast crosses above the slow a flat symbol buys ``quantity`` at
  market, when it crosses below a long symbol sells its position at market.
- ``Bracket``: on a 5m bar, a flat symbol without working orders places a day limit buy
  ``entry_bps`` below the close, with a gtc stop-loss ``stop_bps`` below the limit and a
  gtc take-profit ``take_bps`` above it (``buy_bracket``: children live once the entry
  fills, one cancels the other).
- ``SplitHold``: buys ``quantity`` at market on the first 5m bar, holds across the
  sessions (a split multiplies the shares), sells ``sell_fraction`` of the position at
  market on the 5m bar number ``sell_after`` of the last session.

Settings that make backtrader's broker the documented sessionflow fill model: bars
stamped at their close (``trading_data``), market orders at the next bar's open
(``cheat_on_open`` and ``coc`` off, the defaults), no slippage, no volume filler, the
commission of ``CommissionSpec`` as a ``CommInfoBase``. backtrader has no corporate
actions: the feeds are raw prices (what traded) and a split is applied to the position on
the first bar of its ex-date (``apply_actions``, cash dividends too), like sessionflow's
portfolio does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import backtrader as bt

from peers.trading_data import CrossState, Feeds

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class CommissionSpec:
    """sessionflow's commission models, as one formula for backtrader's broker.

    Per share (``per_share`` a share, at least ``minimum``, at most ``max_share`` of the
    trade value), per order, or ``percent`` of the trade value (0.1 is 0.1%); rounded
    half up to the cent, on the exact decimal of the price (sessionflow keeps money in
    Decimal). ``spec`` is the same setting in sessionflow's ``--commission`` form.
    """

    per_share: float = 0.0
    minimum: float = 0.0
    max_share: float = 0.0
    per_order: float = 0.0
    percent: float = 0.0

    @property
    def spec(self) -> str:
        if self.per_share:
            top = f",max={self.max_share!r}" if self.max_share else ",max=none"
            return f"per_share:{self.per_share!r},min={self.minimum!r}{top}"
        if self.per_order:
            return f"per_order:{self.per_order!r}"
        if self.percent:
            return f"percent:{self.percent!r}"
        return "zero"

    def amount(self, quantity: float, price: float) -> float:
        qty = abs(round(quantity))
        if not qty:
            return 0.0
        value = qty * _dec(price)
        fee = _dec(self.per_order) + value * _dec(self.percent) / 100
        if self.per_share:
            share = max(_dec(self.per_share) * qty, _dec(self.minimum))
            fee += min(share, _dec(self.max_share) * value) if self.max_share else share
        return float(fee.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


@dataclass(frozen=True)
class RefFill:
    """One execution: ``time`` is the open of the 1m bar it filled against (tz-aware UTC)."""

    time: datetime
    symbol: str
    side: str
    quantity: int
    price: float
    commission: float


@dataclass(frozen=True)
class RefOrder:
    symbol: str
    side: str
    quantity: int
    kind: str
    limit: float | None
    stop: float | None
    status: str
    submitted: datetime  # the event time it was placed at (a bar's close), tz-aware UTC
    # a bracket's exit: when its entry filled (the bar's close), False if it never did
    parent_filled: datetime | bool | None = None
    day: bool = False  # valid for the day of its submission only


@dataclass
class RefResult:
    orders: list[RefOrder] = field(default_factory=list)
    fills: list[RefFill] = field(default_factory=list)
    final_equity: float = 0.0
    cash: float = 0.0


class _Commission(bt.CommInfoBase):  # type: ignore[misc]
    params = (("spec", CommissionSpec()), ("stocklike", True), ("commtype", 0))

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        return float(self.p.spec.amount(size, price))


def _utc(num: float) -> datetime:
    return bt.num2date(num).replace(tzinfo=UTC)


class _Base(bt.Strategy):  # type: ignore[misc]
    """Feeds named ``SYM`` (1m) and ``SYM/5m``; calls ``on_five`` when a 5m bar arrives."""

    params = (("symbols", ()), ("actions", ()))

    def __init__(self) -> None:
        self.one = {s: self.getdatabyname(s) for s in self.p.symbols}
        self.five = {s: self.getdatabyname(f"{s}/5m") for s in self.p.symbols}
        self.seen = dict.fromkeys(self.p.symbols, 0)
        self.actions: dict[tuple[str, date], list[tuple[float, float]]] = {}
        for sym, day, split, dividend in self.p.actions:
            if sym in self.one:
                self.actions.setdefault((sym, day), []).append((split, dividend))
        self.log_orders: list[tuple[Any, datetime]] = []
        self.log_fills: list[RefFill] = []

    def start(self) -> None:
        self.started = time.perf_counter()

    def stop(self) -> None:
        self.stopped = time.perf_counter()

    def prenext(self) -> None:
        self.next()

    def apply_actions(self) -> None:
        """Actions take effect on the first bar of their ex-date, as sessionflow's
        portfolio applies them at that session's start: a split multiplies the quantity
        and divides the average price, a cash dividend is paid on the shares held.
        backtrader has neither, so the strategy does it (an order working across the
        split is not adjusted, unlike sessionflow's broker: the strategies place none)."""
        for (symbol, day), todo in list(self.actions.items()):
            data = self.one[symbol]
            if not len(data) or data.datetime.date(0) < day:
                continue
            del self.actions[(symbol, day)]
            pos = self.broker.getposition(data)
            for split, dividend in todo:
                if pos.size and split != 1.0:
                    pos.size = round(pos.size * split)
                    pos.price = pos.price / split
                if pos.size and dividend:
                    self.broker.add_cash(float(pos.size * _dec(dividend)))

    def next(self) -> None:
        if self.actions:
            self.apply_actions()
        seen = self.seen
        for symbol, five in self.five.items():
            n = len(five)
            if n != seen[symbol]:  # feeds are in step: a 5m bar grows its feed at its close
                seen[symbol] = n
                self.on_five(symbol, five, five.datetime.datetime(0))

    def on_five(self, symbol: str, five: Any, now: datetime) -> None:
        raise NotImplementedError

    def place(self, order: Any, now: datetime) -> Any:
        self.log_orders.append((order, now.replace(tzinfo=UTC)))
        return order

    def notify_order(self, order: Any) -> None:
        if order.status in (order.Completed, order.Partial):
            bit = order.executed.exbits[-1] if order.executed.exbits else None
            if bit is None:
                return
            self.log_fills.append(
                RefFill(
                    time=_utc(bit.dt) - MINUTE,
                    symbol=order.data._name,
                    side="buy" if order.isbuy() else "sell",
                    quantity=round(abs(bit.size)),
                    price=float(bit.price),
                    commission=float(bit.comm),
                )
            )


class Crossover(_Base):
    params = (("fast", 5), ("slow", 20), ("quantity", 10))

    def __init__(self) -> None:
        super().__init__()
        self.state = {s: CrossState(self.p.fast, self.p.slow) for s in self.p.symbols}

    def on_five(self, symbol: str, five: Any, now: datetime) -> None:
        signal = self.state[symbol].update(five.close[0])
        if signal is None:
            return
        data = self.one[symbol]
        held = self.broker.getposition(data).size
        if signal and held == 0:
            self.place(self.buy(data=data, size=self.p.quantity), now)
        elif not signal and held > 0:
            self.place(self.sell(data=data, size=held), now)


class Bracket(_Base):
    params = (("entry_bps", 10.0), ("stop_bps", 20.0), ("take_bps", 20.0), ("quantity", 10))

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[str, list[Any]] = {s: [] for s in self.p.symbols}

    def on_five(self, symbol: str, five: Any, now: datetime) -> None:
        data = self.one[symbol]
        self.live[symbol] = [o for o in self.live[symbol] if o.alive()]
        if self.live[symbol] or self.broker.getposition(data).size:
            return
        limit = round(five.close[0] * (1 - self.p.entry_bps / 1e4), 2)
        stop = round(limit * (1 - self.p.stop_bps / 1e4), 2)
        take = round(limit * (1 + self.p.take_bps / 1e4), 2)
        orders = self.buy_bracket(
            data=data,
            size=self.p.quantity,
            price=limit,
            exectype=bt.Order.Limit,
            oargs={"valid": bt.Order.DAY},
            stopprice=stop,
            stopargs={"valid": None},
            limitprice=take,
            limitargs={"valid": None},
        )
        for o in orders:
            self.place(o, now)
        self.live[symbol] = list(orders)


class SplitHold(_Base):
    params = (("quantity", 10), ("sell_after", 6), ("sell_fraction", 0.5), ("last_day", None))

    def __init__(self) -> None:
        super().__init__()
        self.count: dict[str, int] = dict.fromkeys(self.p.symbols, 0)
        self.bought: set[str] = set()

    def on_five(self, symbol: str, five: Any, now: datetime) -> None:
        data = self.one[symbol]
        if symbol not in self.bought:
            self.bought.add(symbol)
            self.place(self.buy(data=data, size=self.p.quantity), now)
            return
        if now.date() != self.p.last_day:
            return
        self.count[symbol] += 1
        if self.count[symbol] == self.p.sell_after:
            size = int(self.broker.getposition(data).size * self.p.sell_fraction)
            if size:
                self.place(self.sell(data=data, size=size), now)


def _kind(order: Any) -> str:
    return {
        bt.Order.Market: "market",
        bt.Order.Limit: "limit",
        bt.Order.Stop: "stop",
        bt.Order.StopLimit: "stop_limit",
    }[order.exectype]


def _ref_order(order: Any, submitted: datetime) -> RefOrder:
    kind = _kind(order)
    price, second = order.created.price, order.created.pricelimit  # stop-limit: stop, limit
    return RefOrder(
        symbol=order.data._name,
        side="buy" if order.isbuy() else "sell",
        quantity=round(abs(order.created.size)),
        kind=kind,
        limit={"limit": price, "stop_limit": second}.get(kind),
        stop={"stop": price, "stop_limit": price}.get(kind),
        status=order.getstatusname().lower(),
        submitted=submitted,
        parent_filled=_parent_filled(order),
        day=bool(order.valid),
    )


def _parent_filled(order: Any) -> datetime | bool | None:
    parent = getattr(order, "parent", None)
    if parent is None:
        return None
    return _utc(parent.executed.dt) if parent.status == parent.Completed else False


def _cerebro(
    strategy: type[_Base],
    feeds: Feeds,
    symbols: Sequence[str],
    cash: float,
    commission: CommissionSpec,
    params: dict[str, Any],
    replay_times: list[float] | None,
) -> RefResult:
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=False, preload=True, runonce=True)
    for symbol in symbols:
        for name, frame, minutes in (
            (symbol, feeds.one[symbol], 1),
            (f"{symbol}/5m", feeds.five[symbol], 5),
        ):
            feed = bt.feeds.PandasDirectData(
                dataname=frame[["open", "high", "low", "close", "volume"]],
                timeframe=bt.TimeFrame.Minutes,
                compression=minutes,
                openinterest=-1,  # column absent
            )
            cerebro.adddata(feed, name=name)
    cerebro.broker.setcash(cash)
    cerebro.broker.addcommissioninfo(_Commission(spec=commission))
    actions = tuple((a.symbol, a.ex_date, a.split, a.dividend) for a in feeds.actions)
    cerebro.addstrategy(strategy, symbols=tuple(symbols), actions=actions, **params)
    (strat,) = cerebro.run()
    if replay_times is not None:
        replay_times.append(strat.stopped - strat.started)
    return RefResult(
        orders=[_ref_order(o, t) for o, t in strat.log_orders],
        fills=strat.log_fills,
        final_equity=float(cerebro.broker.getvalue()),
        cash=float(cerebro.broker.getcash()),
    )


def run_backtrader(
    strategy: type[_Base],
    feeds: Feeds,
    symbols: Sequence[str],
    cash: float,
    commission: CommissionSpec,
    per_symbol: bool = False,
    replay_times: list[float] | None = None,
    **params: Any,
) -> RefResult:
    """Orders, fills and final equity of ``strategy`` over ``symbols``' 1m and 5m feeds.

    ``replay_times`` receives each cerebro's ``start()`` to ``stop()`` seconds.
    ``per_symbol``: one cerebro per symbol, merged (equity = cash + every run's gain), for
    limit and stop orders: in one cerebro backtrader checks them against a feed's current
    bar even when that feed did not move this step (a minute missing for this symbol while
    another symbol traded), which sessionflow never does; alone, a feed moves at every step.
    """
    if not per_symbol:
        return _cerebro(strategy, feeds, symbols, cash, commission, params, replay_times)
    out = RefResult(final_equity=cash, cash=cash)
    for symbol in symbols:
        one = _cerebro(strategy, feeds, [symbol], cash, commission, params, replay_times)
        out.orders += one.orders
        out.fills += one.fills
        out.final_equity += one.final_equity - cash
        out.cash += one.cash - cash
    out.orders.sort(key=lambda o: (o.submitted, o.symbol))
    out.fills.sort(key=lambda f: (f.time, f.symbol))
    return out


def sessions_last_day(feeds: Feeds) -> date:
    return feeds.sessions[-1].day


def round_cents(x: float) -> float:
    return math.floor(x * 100 + 0.5) / 100
