"""Protocol edge cases: malformed messages and frames, a slow consumer, the parsers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import pytest

from sessionflow import BarEvent, Event
from sessionflow.cli.live_cmd import health_line
from sessionflow.feeds.alpaca_parse import Malformed, parse_bar, timestamp_us
from sessionflow.feeds.base import QuoteUpdate
from sessionflow.models import MINUTE, to_us
from sessionflow.stream_coordinator.live.quotes import QuoteBarBuilder
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg
from sessionflow.time_provider import ExchangeCalendar
from tests.live_support import (
    KEY,
    SECRET,
    WAIT,
    LiveRun,
    by_minute,
    day_bars,
    live_settings,
    short_session,
)


def test_malformed_messages_are_counted_reported_and_the_session_goes_on(tmp_path: Path) -> None:
    session = short_session(5)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    with FakeAlpaca(KEY, SECRET) as server:
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for i, (ts, group) in enumerate(minutes.items()):
            good = [bar_msg(b) for b in group]
            no_open = {k: v for k, v in good[0].items() if k != "o"}
            high_below_low = {**good[0], "h": 1.0, "l": 2.0}
            bad_time = {**good[0], "t": "yesterday"}
            unknown = {"T": "zz", "S": "AAPL"}
            # bad messages sit between good ones in the same frame: only they are lost
            mixed = [no_open, good[0], high_below_low, bad_time, unknown, *good[1:]]
            run.clock.set(ts + MINUTE)
            if i == 2:
                server.push_raw(b"\xc1 not msgpack")  # an undecodable frame
                server.push_raw(msgpack.packb({"T": "b"}))  # a map, not an array of maps
            run.push(mixed, len(group))
        run.finish()
    (report,) = run.system.data_manager.reports
    assert [(r.bars, r.quality, r.gaps_found) for r in report.rows] == [(5, 100.0, 0)] * 2
    counters = run.system.counters
    assert counters["feed_malformed_bar"] == 15  # three per minute
    assert counters["feed_malformed_unknown"] == 5
    assert counters["feed_malformed_frame"] == 2
    assert counters["feed_subscriptions"] == 1  # never disconnected
    (health,) = run.coordinator.health
    assert health["feed_malformed"] == 22
    assert "22 malformed" in health_line(health)


def test_a_slow_consumer_blocks_delivery_but_nothing_is_dropped(tmp_path: Path) -> None:
    session = short_session(30)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    release = threading.Event()
    seen: list[BarEvent] = []

    stuck = threading.Event()

    def slow(ev: Event) -> None:
        if isinstance(ev, BarEvent):
            seen.append(ev)
            stuck.set()
            release.wait(WAIT)  # stuck on the very first bar until the test says so

    with FakeAlpaca(KEY, SECRET) as server:
        run = LiveRun(live_settings(tmp_path, server, batch_items=7), server, session)
        run.system.on_event(slow)
        run.start()
        try:
            sink = run.coordinator.sink
            for n, (ts, group) in enumerate(minutes.items(), start=1):
                run.clock.set(ts + MINUTE)
                server.push([bar_msg(b) for b in group])
                assert sink.wait_items(2 * n, WAIT)  # the feed keeps reading while we are stuck
                if n == 1:  # from here on the coordinator is inside the callback
                    assert stuck.wait(WAIT)
            assert len(seen) == 1 and len(sink) >= 56
            release.set()
            run.finish()
        finally:
            release.set()
            run.system.stop()
    assert [e.bar for e in seen] == sorted(bars, key=lambda b: (b.ts, b.symbol))
    assert all(not e.bar.filled for e in seen)
    (report,) = run.system.data_manager.reports
    assert [(r.bars, r.gaps_found) for r in report.rows] == [(30, 0), (30, 0)]
    assert run.system.counters["feed_max_backlog"] >= 56
    assert run.system.store.count_bars() == 60  # type: ignore[attr-defined]


def test_parse_bar_reads_msgpack_and_rfc3339_times() -> None:
    t = datetime(2024, 11, 29, 14, 30, tzinfo=UTC)
    packed = msgpack.Timestamp.from_unix_nano(to_us(t) * 1000 + 999)
    assert timestamp_us(packed) == to_us(t)
    assert timestamp_us("2024-11-29T14:30:00.000000123Z") == to_us(t)
    bar = parse_bar({"S": "AAPL", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10.0, "t": packed})
    assert (bar.symbol, bar.ts, bar.volume, bar.filled) == ("AAPL", t, 10, False)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"o": None}, "not a price"),
        ({"v": 1.5}, "whole size"),
        ({"v": -1}, "not a size"),
        ({"h": 0.1}, "inconsistent"),
        ({"t": "2024-11-29T14:30:00"}, "without zone"),
        ({"S": ""}, "not a symbol"),
        ({"o": True}, "not a price"),
    ],
)
def test_parse_bar_refuses_malformed_bars(change: dict[str, object], reason: str) -> None:
    msg = {"S": "AAPL", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10, "t": "2024-11-29T14:30Z"}
    with pytest.raises(Malformed, match=reason):
        parse_bar({**msg, **change})


def test_quote_bars_close_on_the_next_minute_and_count_late_updates() -> None:
    t = to_us(datetime(2024, 11, 29, 14, 30, tzinfo=UTC))
    b = QuoteBarBuilder()
    assert b.add(QuoteUpdate("A", t + 1, 10.0, 1, 10.1, 2)) == []
    assert b.add(QuoteUpdate("A", t + 2, 9.0, 3, 9.1, 4)) == []
    (bar,) = b.add(QuoteUpdate("A", t + 60_000_001, 11.0, 5, 11.1, 6))
    assert (bar.bid_open, bar.bid_low, bar.bid_close, bar.ask_size) == (10.0, 9.0, 9.0, 4)
    assert b.add(QuoteUpdate("A", t + 3, 8.0, 1, 8.1, 1)) == [] and b.late == 1
    (last,) = b.close_ended(t + 120_000_000)
    assert last.bid_open == 11.0
