"""backtrader: one pandas feed per symbol, resampled to 5, 8 and 15 minutes (its default
way of deriving bars); ``build_in_strategy`` is the variant without ``resampledata``.

The feed is ``bt.feeds.PandasDirectData`` (rows via ``itertuples``), backtrader's own
faster sibling of ``PandasData`` (row by row via ``.iloc``): same bars, about twice
the throughput here.

Bars are handed to backtrader stamped at their *close* (open + 1 minute), its own
convention, so ``resampledata(..., bar2edge=True, rightedge=True)`` closes the 5m
window (09:30, 09:35] with the bar opening at 09:34 (stamped 09:35). backtrader's
boundaries are minutes of the day; ``boundoff`` moves them onto the session open (09:30
ET is on the 5m and 15m grid but not on the 8m one). A derived bar's open is recovered
on the session grid from its stamp (a short last window is stamped at the close).

The session's end must come from a trading calendar: without one, backtrader's
resampler takes the end of session from ``sessionend`` (23:59:59.999989) and only
moves it forward when it detects it, which stops after the first session whose last
window closed on its edge; later sessions' last windows then merge into the next
session's first. So a ``bt.TradingCalendar`` is added with every session of the job as
an explicit (date, open, close) entry in UTC and the other weekdays as holidays.

Even so, the resampler delivers wrong bars around missing minutes (a window's first bar
lost after a window with a gap, windows lost after a long gap, late windows stamped at
the next edge); the checksums show it and benchmarks/README.md describes it.

Load = per-symbol DataFrames and feeds, up to the strategy's ``start()`` inside
``cerebro.run()``. ``resampledata`` makes backtrader turn preloading off (it sets
``_doreplay``), so feeds are read bar by bar during the replay. Replay = ``start()`` to
``stop()``: the strategy sees every 1m and resampled bar (by watching each feed's
length grow) and passes it to ``Row.add``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from peers.job import (
    INTERVALS,
    MINUTE_US,
    EngineResult,
    Job,
    Row,
    Rows,
    Session,
    SessionLookup,
    WindowBuilder,
    read_columns,
)

_EPOCH_NUM = 719163.0  # backtrader's date2num(1970-01-01)


class _Counter(bt.Strategy):  # type: ignore[misc]
    params = (("kinds", None), ("lookup", None))

    def __init__(self) -> None:
        self.kinds: list[tuple[str, int]] = self.p.kinds  # (symbol, interval) per data
        self.lookup: SessionLookup = self.p.lookup
        self.lens = [0] * len(self.datas)
        self.rows: Rows = {}
        self.started = 0.0
        self.stopped = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()

    def stop(self) -> None:
        self.stopped = time.perf_counter()

    def prenext(self) -> None:
        self._see()

    def next(self) -> None:
        self._see()

    def _see(self) -> None:
        for i, d in enumerate(self.datas):
            n = len(d)
            if n == self.lens[i]:
                continue
            self.lens[i] = n
            sym, interval = self.kinds[i]
            stamp_us = round((d.datetime[0] - _EPOCH_NUM) * 1440) * MINUTE_US
            day, open_us = self.lookup.window_of_close_stamp(stamp_us, interval)
            key = (sym, day)
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = Row()
            row.add(interval, open_us, d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0])


def _utc_time(us: int) -> dt.time:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).time()


def trading_calendar(sessions: list[Session]) -> Any:
    """The job's sessions as a backtrader calendar, in UTC like the feeds."""
    days = [s.day for s in sessions]
    span = (days[-1] - days[0]).days
    weekdays = (days[0] + dt.timedelta(days=i) for i in range(span + 1))
    return bt.TradingCalendar(
        earlydays=[(s.day, _utc_time(s.open_us), _utc_time(s.close_us)) for s in sessions],
        holidays=[d for d in weekdays if d.isoweekday() < 6 and d not in days],
    )


class _Builder(_Counter):
    """The variant: 1m feeds only; the strategy builds the derived bars (WindowBuilder)."""

    def __init__(self) -> None:
        super().__init__()
        self.builder = WindowBuilder(self.lookup.sessions, self.rows)

    def stop(self) -> None:
        self.builder.flush()
        self.stopped = time.perf_counter()

    def _see(self) -> None:
        add = self.builder.add
        for i, d in enumerate(self.datas):
            n = len(d)
            if n == self.lens[i]:
                continue
            self.lens[i] = n
            open_us = round((d.datetime[0] - _EPOCH_NUM) * 1440 - 1) * MINUTE_US
            o, h, lo, c, v = d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0]
            add(self.kinds[i][0], open_us, o, h, lo, c, v).add(1, open_us, o, h, lo, c, v)


def run(data: Path, job: Job, build_in_strategy: bool = False) -> EngineResult:
    """``build_in_strategy``: no ``resampledata``; the strategy builds 5m/8m/15m itself,
    so backtrader keeps preload and runonce on."""
    t0 = time.perf_counter()
    c = read_columns(data)
    cerebro = bt.Cerebro(stdstats=False, preload=True, runonce=True)
    cerebro.addcalendar(trading_calendar(c.sessions))
    kinds: list[tuple[str, int]] = []
    # backtrader's windows start at midnight + k * compression minutes - boundoff; this
    # puts them on the session open (which must be at one time of day for all sessions)
    open_min = c.sessions[0].open_us // MINUTE_US % 1440
    if any(s.open_us // MINUTE_US % 1440 != open_min for s in c.sessions):
        raise ValueError("sessions open at different times of day: one boundoff won't do")
    order = np.argsort(c.code, kind="stable")
    bounds = np.searchsorted(c.code[order], np.arange(len(c.names) + 1))
    for code in np.argsort(c.names):
        idx = order[bounds[code] : bounds[code + 1]]
        frame = pd.DataFrame(
            {
                "open": c.open[idx],
                "high": c.high[idx],
                "low": c.low[idx],
                "close": c.close[idx],
                "volume": c.volume[idx].astype(np.float64),
            },
            index=pd.to_datetime(c.ts_us[idx] + MINUTE_US, unit="us"),  # close stamp, UTC
        )
        sym = c.names[code]
        feed = bt.feeds.PandasDirectData(
            dataname=frame,
            name=sym,
            timeframe=bt.TimeFrame.Minutes,
            compression=1,
            openinterest=-1,  # column absent
        )
        cerebro.adddata(feed)
        kinds.append((sym, 1))
        for m in () if build_in_strategy else INTERVALS:
            boundoff = -open_min % m
            cerebro.resampledata(
                feed,
                name=f"{sym}/{m}",
                timeframe=bt.TimeFrame.Minutes,
                compression=m,
                bar2edge=True,
                adjbartime=True,
                rightedge=True,
                boundoff=boundoff,
            )
            kinds.append((sym, m))
    strategy = _Builder if build_in_strategy else _Counter
    cerebro.addstrategy(strategy, kinds=kinds, lookup=SessionLookup(c.sessions))
    strat: Any = cerebro.run(maxcpus=1)[0]
    load_s = strat.started - t0  # feeds built + backtrader's preload
    replay_s = strat.stopped - strat.started

    rows: Rows = strat.rows
    return EngineResult.from_rows(rows, load_s, replay_s, extra={"feeds": len(kinds)})
