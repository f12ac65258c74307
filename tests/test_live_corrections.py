"""Corrected bars (Alpaca ``updatedBars``) and which source wins, in every order of arrival.

Rule under test (docs/live.md, "Which source is right, when"): a correction replaces
whatever holds its minute (stream bar or REST fill) and is counted ``corrected``; a
plain stream bar never replaces anything (a second one is a ``duplicate``); REST only
fills minutes still empty, so it never overrides the stream or a correction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sessionflow import BarEvent, DerivedBarEvent
from sessionflow.models import MINUTE, Bar
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg, updated_bar_msg
from sessionflow.time_provider import ExchangeCalendar
from tests.live_support import (
    GRACE,
    KEY,
    SECRET,
    LiveRun,
    by_minute,
    day_bars,
    live_settings,
    short_session,
)


def _fix(bar: Bar, extra: int) -> Bar:
    """The same minute with late trades: higher high, more volume."""
    return bar._replace(high=bar.high + extra, close=bar.close, volume=bar.volume + 100 * extra)


def _push(
    run: LiveRun,
    ts: datetime,
    bars: Sequence[Bar],
    fixes: Sequence[Bar] = (),
    stale: Sequence[Bar] = (),
) -> None:
    """Move to the end of minute ``ts``; stream its bars, then corrections, then stale bars."""
    run.clock.set(max(run.clock.now(), ts + MINUTE))
    msgs = [bar_msg(b) for b in bars] + [updated_bar_msg(b) for b in fixes]
    run.push(msgs + [bar_msg(b) for b in stale], len(msgs) + len(stale))


def test_corrections_replace_the_minute_in_every_order_of_arrival(tmp_path: Path) -> None:
    session = short_session(20)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    t = list(minutes)
    aapl = {b.ts: b for b in bars if b.symbol == "AAPL"}
    msft = {ts: [b for b in bs if b.symbol == "MSFT"] for ts, bs in minutes.items()}
    final = dict(aapl)
    corr = {t[3]: _fix(aapl[t[3]], 1), t[7]: _fix(aapl[t[7]], 2),
            t[9]: _fix(aapl[t[9]], 3), t[12]: _fix(aapl[t[12]], 4)}  # fmt: skip
    final.update(corr)
    rest = [b._replace(volume=b.volume + 7) if b.ts in (t[12], t[14]) else b for b in bars]
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(rest)  # REST disagrees with the stream at t12 and t14
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for ts in t[:6]:
            run.minute(ts, minutes[ts])
        # A: stream then correction, after the 5m window holding t3 was announced
        run.clock.set(t[5] + MINUTE + GRACE + timedelta(seconds=1))
        assert run.events.wait_for(lambda evs: any(isinstance(e, DerivedBarEvent) for e in evs))
        _push(run, t[6], minutes[t[6]], [corr[t[3]]])
        # B: correction first, the original stream bar after it
        _push(run, t[7], msft[t[7]], [corr[t[7]]])
        _push(run, t[8], minutes[t[8]], stale=[aapl[t[7]]])
        # C: REST fill then correction
        run.minute(t[9], msft[t[9]])
        run.clock.set(t[9] + MINUTE + GRACE + timedelta(seconds=1))
        assert run.events.wait_for(
            lambda evs: any(isinstance(e, BarEvent) and e.bar.filled for e in evs)
        )
        run.minute(t[10], minutes[t[10]])
        _push(run, t[11], minutes[t[11]], [corr[t[9]]])
        # D: a correction alone holds its minute; REST (different) never replaces it
        _push(run, t[12], msft[t[12]], [corr[t[12]]])
        for ts in t[13:]:
            run.minute(ts, minutes[ts])  # t14: stream and REST disagree, the stream stays
        run.finish()

    (report,) = run.system.data_manager.reports
    row = next(r for r in report.rows if r.symbol == "AAPL")
    assert row.corrected == 4
    assert row.rejections == {"duplicate": 1}  # B's stale original
    assert (row.bars, row.gaps_filled) == (20, 1)
    assert row.volume == sum(b.volume for b in final.values())
    assert row.high == max(b.high for b in final.values())
    assert row.low == min(b.low for b in final.values())
    other = next(r for r in report.rows if r.symbol == "MSFT")
    assert (other.corrected, other.rejections) == (0, {})
    stored = run.system.store.load_bars(["AAPL"], session.open, session.close)
    got = {b.ts: (b.high, b.volume) for b in stored.iter_bars()}
    assert got == {ts: (b.high, b.volume) for ts, b in final.items()}
    fixes = {e.bar.ts: e.bar for e in run.events.of(BarEvent) if e.corrected}
    assert {ts: (b.high, b.volume) for ts, b in fixes.items()} == {
        ts: (b.high, b.volume) for ts, b in corr.items()
    }
    revised = [
        e.bar for e in run.events.of(DerivedBarEvent) if e.revised and e.bar.symbol == "AAPL"
    ]
    w0 = [b for b in revised if b.minutes == 5 and b.ts == t[0]]
    assert w0 and w0[-1].volume == sum(final[ts].volume for ts in t[0:5])
    assert w0[-1].high == max(final[ts].high for ts in t[0:5])
    w1 = [b for b in revised if b.minutes == 5 and b.ts == t[5]]
    assert w1 and w1[-1].volume == sum(final[ts].volume for ts in t[5:10])
    assert not [e for e in run.events.of(DerivedBarEvent) if e.revised and e.bar.symbol == "MSFT"]


def test_a_bar_after_its_5m_window_was_announced_revises_the_window(tmp_path: Path) -> None:
    """MSFT is silent for the first window (REST has nothing either), so the 5m window
    goes out without it; then MSFT's 14:33 bar arrives. It is kept (1m, 15m and the
    report include it) and the 5m window is re-derived and announced as revised, so every
    window has one last answer, and it is the engine's."""
    session = short_session(10)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    t = list(minutes)
    late = next(b for b in minutes[t[3]] if b.symbol == "MSFT")
    aapl = {ts: [b for b in bs if b.symbol == "AAPL"] for ts, bs in minutes.items()}
    with FakeAlpaca(KEY, SECRET) as server:
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for ts in t[:5]:
            run.minute(ts, aapl[ts])
        run.clock.set(t[4] + MINUTE + GRACE + timedelta(seconds=1))
        assert run.events.wait_for(
            lambda evs: any(isinstance(e, DerivedBarEvent) and e.interval == 5 for e in evs)
        )
        run.minute(t[5], [late, *minutes[t[5]]])  # 14:33 arrives just before 14:35
        for ts in t[6:]:
            run.minute(ts, minutes[ts])
        run.finish()

    held = [late, *(b for ts in t[5:] for b in minutes[ts] if b.symbol == "MSFT")]
    msft_5m = [e for e in run.events.of(DerivedBarEvent)
               if e.bar.symbol == "MSFT" and e.interval == 5 and e.bar.ts == t[0]]  # fmt: skip
    assert [e.revised for e in msft_5m] == [True]  # not announced before: now it is
    assert (msft_5m[0].bar.volume, msft_5m[0].bar.close) == (late.volume, late.close)
    last: dict[tuple[str, int, datetime], Bar] = {}
    for e in run.events.of(DerivedBarEvent):
        last[(e.bar.symbol, e.interval, e.bar.ts)] = e.bar
    dm = run.system.data_manager
    for sym in ("AAPL", "MSFT"):
        for k in (5, 15):
            engine = {b.ts: b for b in dm.bars(sym, k)}
            told = {ts: b for (s, i, ts), b in last.items() if (s, i) == (sym, k)}
            assert told == engine, (sym, k)
    (w15,) = dm.bars("MSFT", 15)
    assert w15.volume == sum(b.volume for b in held)
    row = next(r for r in dm.reports[0].rows if r.symbol == "MSFT")
    assert (row.bars, row.volume, row.rejections) == (6, w15.volume, {})
    assert run.system.counters["late_bars"] == 1
