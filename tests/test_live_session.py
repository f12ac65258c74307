"""Live mode end to end: real SDK, real sockets on 127.0.0.1, the shared session/upkeep path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sessionflow import (
    BarEvent,
    DerivedBarEvent,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
    TickEvent,
)
from sessionflow.data_upkeep import derive_bars
from sessionflow.models import MINUTE, Tick
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg, quote_msg, trade_msg
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import run_collect
from tests.live_support import (
    DAY,
    GRACE,
    KEY,
    SECRET,
    SYMBOLS,
    WAIT,
    LiveRun,
    by_minute,
    day_bars,
    live_settings,
    short_session,
)


class CountingStore(DuckDBStore):
    """The real store, counting upserts (to see micro-batching, not one write per bar)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.bar_upserts: list[int] = []

    def upsert_bars(self, batch: BarBatch) -> int:
        self.bar_upserts.append(len(batch))
        return super().upsert_bars(batch)


def test_normal_session_follows_the_calendar_and_matches_a_backtest_of_what_it_stored(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    bars = day_bars(calendar)
    store = CountingStore(tmp_path / "live.duckdb")
    with FakeAlpaca(KEY, SECRET) as server:
        settings = live_settings(tmp_path, server, batch_items=100, batch_seconds=10**6)
        run = LiveRun(settings, server, store=store)
        run.start()
        for ts, group in by_minute(bars).items():
            run.minute(ts, group)
        run.finish()
        assert server.rest_requests == []  # nothing was missing, so nothing was asked

    start = run.events.of(SessionStartEvent)[0]
    end = run.events.of(SessionEndEvent)[0]
    session = calendar.session(DAY)
    assert (start.open, start.close) == (session.open, session.close)
    assert start.close.astimezone(calendar.tz).hour == 13  # the early close, from the calendar
    assert start.time == session.open and end.time >= session.close + GRACE

    (report,) = run.system.data_manager.reports
    assert report.early_close
    for row in report.rows:
        mine = [b for b in bars if b.symbol == row.symbol]
        assert (row.bars, row.expected, row.quality) == (210, 210, 100.0)
        assert (row.gaps_found, row.gaps_filled, row.rejections) == (0, 0, {})
        assert row.volume == sum(b.volume for b in mine)
        assert row.derived == {5: 42, 15: 14}

    live_bars = [e.bar for e in run.events.of(BarEvent)]
    assert sorted(live_bars, key=lambda b: (b.ts, b.symbol)) == sorted(
        bars, key=lambda b: (b.ts, b.symbol)
    )
    derived = [e.bar for e in run.events.of(DerivedBarEvent)]
    for symbol in SYMBOLS:
        mine = [b for b in bars if b.symbol == symbol]
        for k in (5, 15):  # 210 minutes: every window is whole, so minutes == k
            got = [b for b in derived if b.symbol == symbol and b.minutes == k]
            assert got == derive_bars(mine, session, k)

    # one upsert per batch of 100 bars (and the rest at the close), not one per bar
    assert store.bar_upserts == [100, 100, 100, 100, 20]
    assert run.system.counters["store_batches"] == 5
    assert store.count_bars() == 420

    # a backtest of what live stored reproduces live's end-of-session report
    backtest = settings.model_copy(update={"mode": "backtest", "start": DAY, "end": DAY})
    _, events = run_collect(backtest, store=store)
    (replayed,) = [e.report for e in events if isinstance(e, SessionEndEvent)]
    assert replayed.rows == report.rows
    store.close()


def test_joining_mid_session_backfills_everything_since_the_open(tmp_path: Path) -> None:
    session = short_session(20)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    joined = session.open + 12 * MINUTE
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        run = LiveRun(live_settings(tmp_path, server), server, session, start=joined)
        run.start()
        for ts, group in minutes.items():
            if ts >= joined - MINUTE:
                run.minute(ts, group)
        run.finish()
        asked = len(server.rest_requests)
    (report,) = run.system.data_manager.reports
    for row in report.rows:
        assert (row.bars, row.quality, row.gaps_filled) == (20, 100.0, 11)
        assert row.volume == sum(b.volume for b in bars if b.symbol == row.symbol)
    assert 1 <= asked <= 3  # the missed morning is asked for at once, for all symbols together
    filled = [e.bar for e in run.events.of(BarEvent) if e.bar.filled]
    assert len(filled) == 22 and max(b.ts for b in filled) < joined - MINUTE


def test_quotes_fold_into_minute_quote_bars_and_trades_arrive_as_ticks(tmp_path: Path) -> None:
    session = short_session(3)
    t0 = session.open
    with FakeAlpaca(KEY, SECRET) as server:
        settings = live_settings(tmp_path, server, quotes=True, trades=True)
        run = LiveRun(settings, server, session)
        run.start()
        run.clock.set(t0 + timedelta(seconds=50))  # the last update's own time
        quotes = [
            quote_msg("AAPL", t0 + timedelta(seconds=s), bid, bid + 0.02, size=s)
            for s, bid in ((1, 100.0), (20, 100.5), (40, 99.5), (50, 100.1))
        ]
        trades = [trade_msg(Tick("MSFT", t0 + timedelta(seconds=5), 410.0, 7, 1))]
        run.push(quotes + trades, len(quotes) + len(trades))
        run.clock.set(t0 + MINUTE + GRACE + timedelta(seconds=1))
        assert run.events.wait_for(lambda evs: any(isinstance(e, QuoteEvent) for e in evs))
        run.finish()
    (q,) = [e.quote for e in run.events.of(QuoteEvent)]
    assert (q.symbol, q.ts) == ("AAPL", t0)
    assert (q.bid_open, q.bid_high, q.bid_low, q.bid_close) == (100.0, 100.5, 99.5, 100.1)
    assert q.ask_close == pytest.approx(100.12) and q.bid_size == 50
    (tick,) = [e.tick for e in run.events.of(TickEvent)]
    assert (tick.symbol, tick.price, tick.size, tick.seq) == ("MSFT", 410.0, 7, 1)
    rows = {r.symbol: r for r in run.system.data_manager.reports[0].rows}
    assert rows["AAPL"].quotes == 1
    assert run.system.store.count_quotes() == 1  # type: ignore[attr-defined]
    assert run.system.store.load_ticks(["MSFT"], t0, session.close) == [tick]


def test_between_sessions_nothing_is_written_and_early_data_is_kept(tmp_path: Path) -> None:
    """Before the open: stale data is counted, data for the session within the clock
    tolerance (a vendor clock a second ahead) is kept, and the session's first bars,
    which cannot exist yet, are refused as from the future and then arrive for real."""
    session = short_session(2)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    first, second = by_minute(bars).values()
    stale = [b._replace(ts=session.open - MINUTE) for b in first]
    early = Tick("MSFT", session.open, 410.0, 7, 1)
    with FakeAlpaca(KEY, SECRET) as server:
        run = LiveRun(live_settings(tmp_path, server, trades=True), server, session)
        run.system.start()  # connected, idle: the session has not opened
        run.clock.set(session.open - timedelta(seconds=1))
        run.push([bar_msg(b) for b in stale + first] + [trade_msg(early)], 5)
        assert run.events.of(SessionStartEvent) == []
        run.clock.set(session.open)
        assert run.events.wait_for(lambda evs: any(isinstance(e, SessionStartEvent) for e in evs))
        run.minute(session.open, first)
        run.minute(session.open + MINUTE, second)
        run.finish()
    counters = run.system.counters
    assert (counters["outside_session"], counters["from_future"]) == (2, 2)
    (report,) = run.system.data_manager.reports
    assert [(r.bars, r.rejections) for r in report.rows] == [(2, {}), (2, {})]
    assert [e.tick for e in run.events.of(TickEvent)] == [early]
    assert run.system.store.count_bars() == 4  # type: ignore[attr-defined]


def test_extended_hours_bars_are_kept_aside_when_asked_for(tmp_path: Path) -> None:
    session = short_session(2)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    firsts = [next(b for b in bars if b.symbol == s) for s in SYMBOLS]
    premarket = [b._replace(ts=session.open - 30 * MINUTE) for b in firsts]  # 09:00 ET
    with FakeAlpaca(KEY, SECRET) as server:
        settings = live_settings(tmp_path, server).model_copy(
            update={"include_extended_hours": True}
        )
        run = LiveRun(settings, server, session)
        run.start()  # the window opened at 04:00 ET
        run.push([bar_msg(b) for b in premarket], 2)
        for ts, group in by_minute(bars).items():
            run.minute(ts, group)
        run.finish(end=datetime(2024, 11, 30, 1, 0, tzinfo=UTC))  # 20:00 ET
    (report,) = run.system.data_manager.reports
    assert [(r.bars, r.extended_bars, r.volume > 0) for r in report.rows] == [(2, 1, True)] * 2
    start = run.events.of(SessionStartEvent)[0]
    assert start.open == session.open


def test_calendar_schedule_skips_holidays_and_weekends(calendar: ExchangeCalendar) -> None:
    from sessionflow.time_provider.schedule import CalendarSchedule

    thanksgiving = datetime(2024, 11, 28, 15, 0, tzinfo=UTC)
    first = next(CalendarSchedule(calendar).upcoming(thanksgiving))
    assert first.date == date(2024, 11, 29) and first.early_close
    saturday = datetime(2024, 11, 30, 15, 0, tzinfo=UTC)
    assert next(CalendarSchedule(calendar).upcoming(saturday)).date == date(2024, 12, 2)


def test_manual_clock_wakes_waiters_and_never_goes_back() -> None:
    import threading

    import pytest

    from sessionflow.time_provider.live_clock import ManualClock

    t0 = datetime(2024, 11, 29, 14, 30, tzinfo=UTC)
    clock = ManualClock(t0)
    wake = threading.Event()
    done = threading.Event()

    def waiter() -> None:
        while clock.now() < t0 + MINUTE:
            clock.wait_until(t0 + MINUTE, wake)
            wake.clear()
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    clock.advance(MINUTE)
    assert done.wait(WAIT)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(t0)


def test_a_held_simulated_clock_stands_at_its_start_until_the_system_begins_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`live --clock-start` under load: seconds spent building the calendar and connecting
    must not pass the simulated close before the run begins (it then waited for Monday)."""
    from sessionflow.time_provider import live_clock

    real = [100.0]
    monkeypatch.setattr(live_clock.time, "monotonic", lambda: real[0])
    t0 = datetime(2024, 11, 29, 17, 57, tzinfo=UTC)
    held = live_clock.WallTimeClock(t0, rate=60, hold=True)
    running = live_clock.WallTimeClock(t0, rate=60)
    real[0] += 12.0  # a slow start: 12 s of building and connecting
    assert held.now() == t0 and running.now() == t0 + timedelta(minutes=12)
    held.begin()
    real[0] += 1.0
    assert held.now() == t0 + MINUTE
    held.begin()  # a second begin changes nothing
    assert held.now() == t0 + MINUTE
    assert live_clock.WallTimeClock(hold=True).now().tzinfo is not None  # the real clock runs
