"""The crossover on NautilusTrader 1.221.0, set up to fill as sessionflow does.

The twin of ``peers.trading_backtrader.Crossover`` (same ``CrossState``, same decisions)
on a ``BacktestEngine``: one ``Equity`` per symbol on a simulated venue ``XNAS``, a cash
account with the same starting cash, netting, the commission of ``CommissionSpec`` as a
``FeeModel``, no slippage (the default ``FillModel``).

Fills at the next 1m bar's open. Nautilus 1.221.0 has no setting for it: a market order
fills when it reaches the simulated venue, against the venue's L1 book as the last data
left it. With bar execution (``bar_execution=True``, the default) a bar moves the book
through its open, high, low and close before the strategy's ``on_bar`` sees it, so an
order placed there fills at that bar's close; with a latency model most fills took the
next bar's open price but some its close, all stamped at its close (benchmarks/README.md;
nautilus_trader issues 1214, 1537 and 4063; the next-bar-open mode of 4063 came after
1.221.0). So the venue is fed what a market order
should meet: one ``QuoteTick`` per 1m bar at the bar's open (bid = ask = open, stamped
at the open, sizes large enough that 10 shares never walk the book: no volume cap, as
in the benchmark's sessionflow settings), and bars do not move the market
(``bar_execution=False``). The strategy decides on the 5m bar at its close and sends
the market order on its symbol's next quote, that is at the open of its next 1m bar,
whenever that comes (a missing minute, the next session): what sessionflow's broker
does with a market order placed at the 5m close. A 5m bar and a quote stamped at the
same instant reach the strategy bar first (the stream is sorted stably by ``ts_init``
and the bars are added first), so the decision at a window's close fills at the open of
the minute that starts there.

5m bars: the engine's own (``trading_data.load_feeds``, aligned to the session open, a
short last window on an early close, none for an empty window), as
``<SYM>.XNAS-5-MINUTE-LAST-EXTERNAL`` stamped at their close; Nautilus's time-bar
aggregation of the 1m bars would need every 1m bar in the stream as well (the default
way, measured by ``engine_nautilus`` in compare.py at about half the speed of an actor
handed the 1m bars alone). The risk engine is bypassed: at a 5m close hundreds of
symbols can send an order at the same instant, above its default order rate limit.

Final equity: the account's cash (Nautilus's, commissions included) plus every open
position (Nautilus's quantity) marked at its symbol's last 1m close, as sessionflow's
portfolio marks it; Nautilus's own mark would be the last quote, the last bar's open.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.models import FeeModel
from nautilus_trader.common.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType, QuoteTick
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId, Venue
from nautilus_trader.model.objects import Money, Quantity
from nautilus_trader.risk.config import RiskEngineConfig
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

from peers.trading_backtrader import CommissionSpec, RefFill, RefResult
from peers.trading_data import COLUMNS, CrossState, Feeds

VENUE = "XNAS"
QUOTE_SIZE = 1e9  # shares on each side of a quote: an order never walks the L1 book


class _Commission(FeeModel):  # type: ignore[misc]
    """``CommissionSpec`` (per share, minimum, maximum share of the value) per fill."""

    def __init__(self, spec: CommissionSpec) -> None:
        super().__init__()
        self.spec = spec

    def get_commission(self, order: Any, fill_qty: Any, fill_px: Any, instrument: Any) -> Money:
        return Money(self.spec.amount(fill_qty.as_double(), fill_px.as_double()), USD)


class NautilusCrossover(Strategy):  # type: ignore[misc]
    """The crossover on the 5m bars; its market orders go out on the symbol's next quote."""

    def __init__(
        self,
        five: Sequence[BarType],
        fast: int,
        slow: int,
        quantity: int,
        symbol_of: Any,
        at_once: bool = False,
    ) -> None:
        super().__init__()
        self.five = list(five)
        self.at_once = at_once  # send from on_bar (Nautilus's own rule), not on the next quote
        self.cross = {bt.instrument_id: CrossState(fast, slow) for bt in self.five}
        self.quantity = quantity
        self.symbol_of = symbol_of
        self.pending: dict[InstrumentId, tuple[OrderSide, int]] = {}
        self.fills: list[RefFill] = []
        self.started = self.stopped = 0.0

    def on_start(self) -> None:
        self.started = time.perf_counter()
        for bar_type in self.five:
            self.subscribe_bars(bar_type)
            if not self.at_once:
                self.subscribe_quote_ticks(bar_type.instrument_id)

    def on_stop(self) -> None:
        self.stopped = time.perf_counter()

    def on_bar(self, bar: Bar) -> None:
        iid = bar.bar_type.instrument_id
        signal = self.cross[iid].update(bar.close.as_double())
        if signal is None:
            return
        held = int(self.portfolio.net_position(iid))
        if signal and held == 0:
            todo = (OrderSide.BUY, self.quantity)
        elif not signal and held > 0:
            todo = (OrderSide.SELL, held)
        else:
            return
        if self.at_once:
            self._send(iid, *todo)
        else:
            self.pending[iid] = todo

    def on_quote_tick(self, tick: QuoteTick) -> None:
        if not self.pending:
            return
        todo = self.pending.pop(tick.instrument_id, None)
        if todo is not None:
            self._send(tick.instrument_id, *todo)

    def _send(self, iid: InstrumentId, side: OrderSide, qty: int) -> None:
        order = self.order_factory.market(
            iid, side, Quantity.from_int(qty), time_in_force=TimeInForce.GTC
        )
        self.submit_order(order)

    def on_order_filled(self, event: Any) -> None:
        self.fills.append(
            RefFill(
                time=datetime.fromtimestamp(event.ts_event / 1e9, UTC),
                symbol=self.symbol_of[event.instrument_id],
                side="buy" if event.order_side == OrderSide.BUY else "sell",
                quantity=round(event.last_qty.as_double()),
                price=event.last_px.as_double(),
                commission=event.commission.as_double(),
            )
        )


def _ns(stamps: Any) -> np.ndarray:
    """Naive-UTC datetimes (an index or a column) as uint64 nanoseconds."""
    return np.asarray(stamps, dtype="datetime64[ns]").view(np.int64).astype(np.uint64)


def run_nautilus(
    feeds: Feeds,
    symbols: Sequence[str],
    cash: float,
    commission: CommissionSpec,
    fast: int = 5,
    slow: int = 20,
    quantity: int = 10,
    replay_times: list[float] | None = None,
    at_close: bool = False,
) -> RefResult:
    """Fills and final equity of the crossover over ``symbols``' 1m opens and 5m bars.

    ``replay_times`` receives ``engine.run()``'s seconds (the strategy's ``on_start`` to
    ``on_stop``: the same span as backtrader's ``start()`` to ``stop()``). ``at_close``:
    Nautilus's own rule instead, for the record of where it differs: the 1m bars move
    the market (``bar_execution=True``, no quotes) and the strategy sends its order from
    ``on_bar``, so it fills at once at the close of the 1m bar ending the 5m window."""
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            risk_engine=RiskEngineConfig(bypass=True),
            run_analysis=False,
        )
    )
    venue = Venue(VENUE)
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(cash, USD)],
        fee_model=_Commission(commission),
        bar_execution=at_close,
    )
    five_types: list[BarType] = []
    symbol_of: dict[InstrumentId, str] = {}
    bars: list[Any] = []
    quotes: list[Any] = []
    for sym in symbols:
        instrument = TestInstrumentProvider.equity(symbol=sym, venue=VENUE)
        engine.add_instrument(instrument)
        symbol_of[instrument.id] = sym
        five = feeds.five[sym]
        bar_type = BarType.from_str(f"{sym}.{VENUE}-5-MINUTE-LAST-EXTERNAL")
        five_types.append(bar_type)
        at = _ns(five.index)  # the close
        bars += Bar.from_raw_arrays_to_list(
            bar_type,
            instrument.price_precision,
            instrument.size_precision,
            *(np.ascontiguousarray(five[c], dtype=np.float64) for c in COLUMNS),
            at,
            at,
        )
        one = feeds.one[sym]
        if at_close:  # the 1m bars, stamped at their close, in place of the quotes
            at = _ns(one.index)
            quotes += Bar.from_raw_arrays_to_list(
                BarType.from_str(f"{sym}.{VENUE}-1-MINUTE-LAST-EXTERNAL"),
                instrument.price_precision,
                instrument.size_precision,
                *(np.ascontiguousarray(one[c], dtype=np.float64) for c in COLUMNS),
                at,
                at,
            )
            continue
        opens = np.ascontiguousarray(one["open"], dtype=np.float64)
        sizes = np.full(len(one), QUOTE_SIZE)
        at = _ns(one["open_ts"])
        quotes += QuoteTick.from_raw_arrays_to_list(
            instrument.id,
            instrument.price_precision,
            instrument.size_precision,
            opens,
            opens,
            sizes,
            sizes,
            at,
            at,
        )
    # bars first: at one instant a 5m bar (its close) reaches the strategy before the
    # quote at the open of the minute starting there (the sort is stable); at_close: the
    # 1m bar ending the window moves the market before the 5m bar reaches the strategy
    engine.add_data(quotes + bars if at_close else bars + quotes, sort=True)
    strategy = NautilusCrossover(five_types, fast, slow, quantity, symbol_of, at_close)
    engine.add_strategy(strategy)
    engine.run()
    if replay_times is not None:
        replay_times.append(strategy.stopped - strategy.started)
    account = engine.cache.account_for_venue(venue)
    cash_now = Decimal(str(account.balance_total(USD).as_decimal()))
    equity = cash_now
    for position in engine.cache.positions_open():
        last = feeds.one[symbol_of[position.instrument_id]]["close"].iloc[-1]
        equity += Decimal(str(position.signed_decimal_qty())) * Decimal(repr(float(last)))
    engine.dispose()
    return RefResult(
        fills=sorted(strategy.fills, key=lambda f: (f.time, f.symbol)),
        final_equity=float(equity),
        cash=float(cash_now),
    )
