"""NautilusTrader 1.221.0: BacktestEngine, one equity per symbol, internal bar aggregation.

Each symbol's bars go in as ``<SYM>.XNAS-1-MINUTE-LAST-EXTERNAL`` (built with
``Bar.from_raw_arrays_to_list``), stamped at their close (open + 1 minute) as
Nautilus expects (``ts_event = ts_init`` = close). An Actor subscribes to the 1m bars
and to ``<SYM>.XNAS-<m>-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL`` for m = 5, 8, 15, so the
DataEngine's TimeBarAggregator builds the derived bars, and passes every bar to
``Row.add`` in ``on_bar`` (prices via ``as_double()``). ``build_in_actor`` is the
variant whose actor subscribes to 1m only and builds the derived bars itself; ``noop``
the one whose actor subscribes like the first and only counts the bars it is handed
(Nautilus's own cost per delivered bar, beside ``sessionflow_noop``).

Settings, all for a data-only job:
- ``time_bars_build_with_no_updates=False``: a window with no 1m bar yields no bar
  (by default Nautilus emits flat zero-volume bars, all night long);
- intervals left-open and stamped on close (defaults): window (09:30, 09:35] holds the
  bars opening 09:30..09:34. Time bars align to midnight UTC plus
  ``time_bars_origin_offset``, keyed by aggregation (MINUTE), so one offset serves 5, 8
  and 15: the open's minute of day modulo lcm(5, 8, 15) = 120;
- venue ``bar_execution=False`` and ``run_analysis=False``: no orders are placed, so the
  matching engine and the post-run portfolio analysis have nothing to do;
- log level ERROR.

A window's bar is built when the engine clock passes its close, which only happens when
some data at or after that instant exists: Nautilus has no end-of-data flush. The last
session's short 8m window closes after every bar, so one bar of an unwatched instrument
is added after the last close (``_sentinel``).

Load = Parquet to Nautilus ``Bar`` objects plus ``add_instrument``/``add_data`` (which
sorts the stream). Replay = ``engine.run()``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import LoggingConfig
from nautilus_trader.data.config import DataEngineConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AccountType, BarAggregation, OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from peers.job import (
    INTERVALS,
    MINUTE_US,
    EngineResult,
    Job,
    Row,
    Rows,
    SessionLookup,
    WindowBuilder,
    read_columns,
    timing_table,
)

VENUE = "XNAS"


class _BarCounter(Actor):  # type: ignore[misc]
    def __init__(self, kinds: dict[BarType, tuple[str, int]], lookup: SessionLookup) -> None:
        super().__init__()
        self.kinds = kinds  # subscribed as given; bars arrive with the standard bar type
        self.by_standard = {bt.standard(): v for bt, v in kinds.items()}
        self.lookup = lookup
        self.rows: Rows = {}

    def on_start(self) -> None:
        for bar_type in self.kinds:
            self.subscribe_bars(bar_type)

    def on_bar(self, bar: Bar) -> None:
        sym, interval = self.by_standard[bar.bar_type]
        key = (sym, self.lookup.of_close_stamp(bar.ts_event // 1000))
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row()
        open_us = bar.ts_event // 1000 - interval * MINUTE_US
        # when it was handed over (the engine clock) and its length (its bar type's: a
        # session's short last window is built at the full window's end)
        row.deliver(interval, open_us, interval, self.clock.timestamp_ns() // 1000)
        row.add(
            interval,
            open_us,
            bar.open.as_double(),
            bar.high.as_double(),
            bar.low.as_double(),
            bar.close.as_double(),
            round(bar.volume.as_double()),  # the aggregate can be 60716.99999...
        )


class _Builder(Actor):  # type: ignore[misc]
    """The variant: subscribes to the 1m bars only and builds 5m/8m/15m itself."""

    def __init__(self, kinds: dict[BarType, tuple[str, int]], lookup: SessionLookup) -> None:
        super().__init__()
        self.kinds = {bt: v for bt, v in kinds.items() if v[1] == 1}
        self.symbol_of = {bt.standard(): v[0] for bt, v in self.kinds.items()}
        self.rows: Rows = {}
        self.builder = WindowBuilder(lookup.sessions, self.rows)

    def on_start(self) -> None:
        for bar_type in self.kinds:
            self.subscribe_bars(bar_type)

    def on_bar(self, bar: Bar) -> None:
        open_us = bar.ts_event // 1000 - MINUTE_US
        o, h = bar.open.as_double(), bar.high.as_double()
        lo, c = bar.low.as_double(), bar.close.as_double()
        v = bar.volume.as_double()
        row = self.builder.add(self.symbol_of[bar.bar_type], open_us, o, h, lo, c, v)
        row.add(1, open_us, o, h, lo, c, v)

    def on_stop(self) -> None:
        self.builder.flush()


class _Noop(_BarCounter):
    """Subscribed like :class:`_BarCounter`; ``on_bar`` only counts (the consumer floor
    left out: what Nautilus costs per delivered bar)."""

    def __init__(self, kinds: dict[BarType, tuple[str, int]], lookup: SessionLookup) -> None:
        super().__init__(kinds, lookup)
        self.delivered = 0

    def on_bar(self, bar: Bar) -> None:
        self.delivered += 1


def _sentinel(engine: BacktestEngine, at_us: int) -> Any:
    """One bar of an unwatched instrument after the last close: Nautilus builds a window
    when its clock passes the close, and has no end-of-data flush, so without a later
    data point the last session's short 8m windows (closing at 21:02 UTC, after the
    session) are never built. ``engine.run(end=...)`` does not advance the clock there."""
    instrument = TestInstrumentProvider.equity(symbol="ZZEND", venue=VENUE)
    engine.add_instrument(instrument)
    stamp = np.array([at_us * 1000], dtype=np.uint64)
    one = np.array([1.0])
    return Bar.from_raw_arrays_to_list(
        BarType.from_str(f"ZZEND.{VENUE}-1-MINUTE-LAST-EXTERNAL"),
        instrument.price_precision,
        instrument.size_precision,
        one,
        one,
        one,
        one,
        one,
        stamp,
        stamp,
    )[0]


def run(data: Path, job: Job, build_in_actor: bool = False, noop: bool = False) -> EngineResult:
    """``build_in_actor``: the actor subscribes to the 1m bars only and builds the derived
    bars itself, instead of Nautilus's internal aggregation; ``noop``: the actor only
    counts the bars (1m and derived) it is handed."""
    t0 = time.perf_counter()
    c = read_columns(data)
    kinds: dict[BarType, tuple[str, int]] = {}
    # one origin for every minute aggregation (Nautilus keys it by MINUTE): the open's
    # minute of the day modulo lcm(5, 8, 15) = 120, so all windows start at the open
    first_open = c.sessions[0].open_us
    if any((s.open_us - first_open) % (24 * 60 * MINUTE_US) for s in c.sessions):
        raise ValueError("sessions open at different times of day: one origin offset won't do")
    offset = (first_open // MINUTE_US) % (24 * 60) % math.lcm(*INTERVALS)
    origin = {BarAggregation.MINUTE: pd.Timedelta(minutes=offset)}
    instruments = []
    per_symbol: list[list[Any]] = []
    order = np.argsort(c.code, kind="stable")  # stable: each symbol's bars stay in time order
    bounds = np.searchsorted(c.code[order], np.arange(len(c.names) + 1))
    for code, sym in enumerate(c.names):
        instrument = TestInstrumentProvider.equity(symbol=sym, venue=VENUE)
        instruments.append(instrument)
        bar_type = BarType.from_str(f"{sym}.{VENUE}-1-MINUTE-LAST-EXTERNAL")
        kinds[bar_type] = (sym, 1)
        for m in INTERVALS:
            derived = BarType.from_str(f"{sym}.{VENUE}-{m}-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL")
            kinds[derived] = (sym, m)
        idx = order[bounds[code] : bounds[code + 1]]
        stamp = ((c.ts_us[idx] + MINUTE_US) * 1000).astype(np.uint64)  # close, in ns
        per_symbol.append(
            Bar.from_raw_arrays_to_list(
                bar_type,
                instrument.price_precision,
                instrument.size_precision,
                np.ascontiguousarray(c.open[idx]),
                np.ascontiguousarray(c.high[idx]),
                np.ascontiguousarray(c.low[idx]),
                np.ascontiguousarray(c.close[idx]),
                c.volume[idx].astype(np.float64),
                stamp,
                stamp,
            )
        )
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            logging=LoggingConfig(log_level="ERROR"),
            data_engine=DataEngineConfig(
                time_bars_build_with_no_updates=False,
                time_bars_origin_offset=origin,
            ),
            run_analysis=False,
        )
    )
    engine.add_venue(
        venue=Venue(VENUE),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(1_000_000, USD)],
        bar_execution=False,
    )
    for instrument in instruments:
        engine.add_instrument(instrument)
    # one time-ordered stream (the file is sorted by time, then symbol); one add_data call
    merged: list[Any] = [None] * len(c)
    for code, bars in enumerate(per_symbol):
        for pos, bar in zip(order[bounds[code] : bounds[code + 1]].tolist(), bars, strict=True):
            merged[pos] = bar
    del per_symbol
    merged.append(_sentinel(engine, c.sessions[-1].close_us + max(INTERVALS) * MINUTE_US))
    engine.add_data(merged, sort=True)
    kind = _Builder if build_in_actor else _Noop if noop else _BarCounter
    counter = kind(kinds, SessionLookup(c.sessions))
    engine.add_actor(counter)
    load_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    engine.run()
    if build_in_actor:  # on_stop has flushed already; a second flush emits nothing
        counter.builder.flush()
    replay_s = time.perf_counter() - t1
    engine.dispose()

    extra = {"bar_types": len(kinds)}
    if noop:  # delivered bars, by kind: the input's 1m bars and the rest
        derived = {0: counter.delivered - len(c)}  # 0: every derived interval together
        return EngineResult({}, load_s, replay_s, len(c), derived, extra)
    rows: Rows = counter.rows
    result = EngineResult.from_rows(rows, load_s, replay_s, extra=extra)
    if not build_in_actor:  # the WindowBuilder variant emits late by design: not recorded
        result.timing = timing_table(rows)
    return result
