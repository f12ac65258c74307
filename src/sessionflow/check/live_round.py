"""The live round: a short session against the local Alpaca-protocol server, judged by values.

The server (``sessionflow.testing.alpaca_server``: real websocket, msgpack, the real
SDK, REST on loopback) streams bars, quote updates and trades minute by minute on a
test-driven clock. On the way it streams one bar that differs from what REST holds
and then its ``updatedBars`` correction, drops the connection without a close frame
and stays silent for three minutes, which REST must backfill. The round passes when
what the live system delivered and stored equals what the server served (after the
correction): every 1m bar's values, the report's volume/high/low and ``corrected``
count, every quote bar folded from the updates, every trade; nothing lost.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sessionflow.check.faults import FaultResult
from sessionflow.check.local_live import KEY, OPEN, SECRET, WAIT, local_live
from sessionflow.demo import synthetic_bars
from sessionflow.events import BarEvent, Event, QuoteEvent, TickEvent
from sessionflow.models import MINUTE, Bar, Quote, Tick
from sessionflow.system_manager import SystemManager
from sessionflow.testing.alpaca_server import (
    FakeAlpaca,
    bar_msg,
    quote_msg,
    trade_msg,
    updated_bar_msg,
)
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

_MINUTES = 12
_SYMBOLS = ("AAA", "BBB")
_CORRECTED = 2  # AAA's bar of this minute is streamed stale, then corrected
_SILENT = range(5, 8)  # minutes lost to the dropped connection, backfilled from REST
_QUOTE_SECONDS = (5, 35)


@dataclass
class _Seen:
    """What consumers were given, collected on the live thread."""

    bars: dict[tuple[str, datetime], Bar] = field(default_factory=dict)
    corrected: list[Bar] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, ev: Event) -> None:
        with self.changed:
            self._take(ev)
            self.changed.notify_all()

    def has_bars(self, keys: Sequence[tuple[str, datetime]]) -> bool:
        """Wait until every (symbol, minute) in ``keys`` was delivered."""
        with self.changed:
            return self.changed.wait_for(lambda: all(k in self.bars for k in keys), WAIT)

    def _take(self, ev: Event) -> None:
        if isinstance(ev, BarEvent):
            self.bars[(ev.bar.symbol, ev.bar.ts)] = ev.bar
            if ev.corrected:
                self.corrected.append(ev.bar)
        elif isinstance(ev, QuoteEvent):
            self.quotes.append(ev.quote)
        elif isinstance(ev, TickEvent):
            self.ticks.append(ev.tick)


@dataclass
class _Served:
    """What the server sent (and REST holds): the truth the round compares with."""

    bars: dict[tuple[str, datetime], Bar]
    quotes: list[Quote] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    pushed: int = 0  # well-formed messages streamed, for waiting on the sink


def run_live_round(workdir: Path) -> FaultResult:
    """One live session against the local server; see the module docstring."""
    workdir.mkdir(parents=True, exist_ok=True)
    quiet = [logging.getLogger(n) for n in ("sessionflow.feeds", "alpaca")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)  # the dropped connection is the point here, not news
    try:
        with (
            tempfile.TemporaryDirectory(dir=workdir) as tmp,
            FakeAlpaca(KEY, SECRET) as server,
        ):
            return _play(Path(tmp), server)
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)


def _served_bars() -> list[Bar]:
    day = OPEN.date()
    bars = synthetic_bars(ExchangeCalendar(), list(_SYMBOLS), day, day, seed=15)
    return [b for b in bars.iter_bars() if b.ts < OPEN + _MINUTES * MINUTE]


def _stale(bar: Bar) -> Bar:
    """The bar as first streamed, before late trades were reported."""
    return bar._replace(volume=bar.volume - 37)


def _quote_updates(symbol: str, ts: datetime, base: float) -> tuple[list[dict[str, Any]], Quote]:
    """Two top-of-book updates in the minute and the quote bar they fold into."""
    bids = [round(base - 0.01 * (i + 1), 2) for i in range(len(_QUOTE_SECONDS))]
    msgs = [
        quote_msg(symbol, ts + timedelta(seconds=s), b, round(b + 0.02, 2), size=i + 1)
        for i, (s, b) in enumerate(zip(_QUOTE_SECONDS, bids, strict=True))
    ]
    asks = [round(b + 0.02, 2) for b in bids]
    n = len(bids)
    folded = Quote(
        symbol,
        ts,
        bids[0],
        max(bids),
        min(bids),
        bids[-1],
        n,
        asks[0],
        max(asks),
        min(asks),
        asks[-1],
        n,
    )
    return msgs, folded


def _play(tmp: Path, server: FakeAlpaca) -> FaultResult:
    served_bars = _served_bars()
    served = _Served({(b.symbol, b.ts): b for b in served_bars})
    server.add_rest_bars(served_bars)
    live = local_live(
        tmp,
        server,
        _SYMBOLS,
        _MINUTES,
        OPEN - timedelta(seconds=30),
        quotes=True,
        trades=True,
        reconnect_min_seconds=0.02,
        reconnect_max_seconds=0.1,
    )
    settings, session, clock, system = live.settings, live.session, live.clock, live.system
    coordinator = live.coordinator
    seen = _Seen()
    system.on_event(seen)
    problems: list[str] = []
    grace = timedelta(seconds=settings.live.bar_grace_seconds)

    def wait(ok: Callable[[], bool], what: str) -> bool:
        if not ok():
            problems.append(f"timed out waiting for {what}")
            return False
        return True

    def push(messages: Sequence[dict[str, Any]]) -> bool:
        server.push(messages)
        served.pushed += len(messages)
        return wait(lambda: coordinator.sink.wait_taken(served.pushed, WAIT), "the feed")

    finished = False
    try:
        system.start()
        clock.set(OPEN)
        for m in range(_MINUTES):
            ts = OPEN + m * MINUTE
            if m == _SILENT[-1] + 1:  # REST backfills the silence once its grace has passed
                clock.set(ts + grace + timedelta(seconds=1))
                keys = [(s, ts - MINUTE) for s in _SYMBOLS]
                if not wait(lambda k=keys: seen.has_bars(k), "the REST backfill"):  # type: ignore[misc]
                    break
            clock.set(ts + MINUTE)
            if m == _SILENT[0]:
                server.drop_connections()  # no close frame, as a network failure
                if not wait(lambda: coordinator.sink.wait_subscribed(2, WAIT), "a reconnect"):
                    break
            if m in _SILENT:
                continue
            if not push(_minute(ts, m, served)):
                break
        clock.set(session.close + grace + timedelta(seconds=1))
        finished = system.wait(WAIT)
    except Exception as exc:  # a round that cannot run fails with the reason, not a traceback
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        system.stop()
    try:
        return _judge(system, session, served, seen, finished, problems)
    finally:
        system.store.close()


def _minute(ts: datetime, m: int, served: _Served) -> list[dict[str, Any]]:
    """Minute ``m``'s messages: bars (one stale, then its correction), quotes, one trade."""
    msgs: list[dict[str, Any]] = []
    for sym in _SYMBOLS:
        bar = served.bars[(sym, ts)]
        msgs.append(bar_msg(_stale(bar) if (sym, m) == ("AAA", _CORRECTED) else bar))
        updates, folded = _quote_updates(sym, ts, bar.close)
        msgs.extend(updates)
        served.quotes.append(folded)
    tick = Tick("AAA", ts + timedelta(seconds=20), served.bars[("AAA", ts)].close, 10 + m, 1000 + m)
    served.ticks.append(tick)
    msgs.append(trade_msg(tick))
    if m == _CORRECTED + 1:  # about 30 s after the minute, as Alpaca sends them
        msgs.append(updated_bar_msg(served.bars[("AAA", ts - MINUTE)]))
    return msgs


def _ohlcv(b: Bar | None) -> tuple[Any, ...] | None:
    return None if b is None else (b.open, b.high, b.low, b.close, b.volume)


def _judge(
    system: SystemManager,
    session: SessionInfo,
    served: _Served,
    seen: _Seen,
    finished: bool,
    problems: list[str],
) -> FaultResult:
    if system.error is not None:
        problems.append(f"live system failed: {type(system.error).__name__}: {system.error}")
    elif not finished:
        problems.append(f"the session did not end within {WAIT:g} s of its close")
    store = system.store
    names = list(_SYMBOLS)
    stored_bars = store.load_bars(names, session.open, session.close)
    stored = {(b.symbol, b.ts): b for b in stored_bars.iter_bars()}
    for what, got in (("delivered", seen.bars), ("stored", stored)):
        keys = sorted(served.bars.keys() | got.keys())
        differ = [k for k in keys if _ohlcv(got.get(k)) != _ohlcv(served.bars.get(k))]
        if differ:
            sym, ts = differ[0]
            problems.append(
                f"{len(differ)} {what} bars differ from what the server served, first {sym} "
                f"{ts:%H:%MZ}: {_ohlcv(got.get(differ[0]))} != {_ohlcv(served.bars.get(differ[0]))}"
            )
    reports = system.data_manager.reports
    rows = {r.symbol: r for r in reports[0].rows} if reports else {}
    if not rows:
        problems.append("no session report")
    for sym, row in rows.items():
        mine = [b for (s, _), b in served.bars.items() if s == sym]
        want = (
            len(mine),
            sum(b.volume for b in mine),
            max(b.high for b in mine),
            min(b.low for b in mine),
            1 if sym == "AAA" else 0,
            len(_SILENT),
        )
        have = (row.bars, row.volume, row.high, row.low, row.corrected, row.gaps_filled)
        if have != want:
            problems.append(
                f"{sym} report (bars, volume, high, low, corrected, filled) {have} != served {want}"
            )
    if [_ohlcv(b) for b in seen.corrected] != [_ohlcv(served.bars[("AAA", _at(_CORRECTED))])]:
        problems.append(f"corrected bars delivered: {[_ohlcv(b) for b in seen.corrected]}")
    key_q: Callable[[Quote], tuple[str, datetime]] = lambda q: (q.symbol, q.ts)  # noqa: E731
    stored_quotes = list(store.load_quotes(names, session.open, session.close).iter_quotes())
    for what, quotes in (("delivered", seen.quotes), ("stored", stored_quotes)):
        if sorted(quotes, key=key_q) != sorted(served.quotes, key=key_q):
            problems.append(
                f"{what} quote bars ({len(quotes)}) differ from the "
                f"{len(served.quotes)} folded from the served updates"
            )
    stored_ticks = store.load_ticks(names, session.open, session.close)
    for what, ticks in (("delivered", seen.ticks), ("stored", stored_ticks)):
        if sorted(ticks, key=lambda t: (t.ts, t.seq)) != served.ticks:
            problems.append(
                f"{what} trades ({len(ticks)}) differ from the {len(served.ticks)} served"
            )
    counters = system.counters
    if counters.get("feed_disconnects", 0) < 1:
        problems.append("the dropped connection was not seen")
    detail = (
        f"{_MINUTES} minutes x {len(_SYMBOLS)} symbols: {len(served.bars)} bars, "
        f"{len(served.quotes)} quote bars, {len(served.ticks)} trades served; "
        f"1 disconnect, {len(_SILENT)} silent minutes backfilled from REST, 1 stale bar then its "
        f"correction (corrected={rows['AAA'].corrected if 'AAA' in rows else '-'}); "
    ) + ("delivered and stored equal what was served" if not problems else "; ".join(problems[:4]))
    return FaultResult("live session on the local Alpaca server", 2, not problems, detail)


def _at(m: int) -> datetime:
    return OPEN + m * MINUTE
