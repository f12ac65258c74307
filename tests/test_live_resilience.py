"""Dropped or silent sockets, the connection limit, failing REST: the session still ends whole."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import msgpack
from websockets.sync.client import connect

from sessionflow import BarEvent
from sessionflow.models import MINUTE, Bar
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg
from sessionflow.time_provider import ExchangeCalendar
from tests.live_support import (
    GRACE,
    KEY,
    SECRET,
    WAIT,
    LiveRun,
    by_minute,
    day_bars,
    live_settings,
    short_session,
)


def _session_bars(minutes: int) -> tuple[list[Bar], dict]:  # type: ignore[type-arg]
    session = short_session(minutes)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    return bars, by_minute(bars)


def test_disconnect_mid_session_is_backfilled_and_volume_is_never_double_counted(
    tmp_path: Path,
) -> None:
    session = short_session(30)
    bars, minutes = _session_bars(30)
    times = list(minutes)
    lost = times[10:15]
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for ts in times[:10]:
            run.minute(ts, minutes[ts])
        assert server.drop_connections() == 1  # network failure: no close frame
        assert run.coordinator.sink.wait_subscribed(2, WAIT)  # reconnected and re-subscribed
        for ts in lost:
            run.minute(ts, [])  # these bars are never streamed
        # once the last lost minute is past the grace period, REST backfills it ...
        run.clock.set(lost[-1] + MINUTE + GRACE + timedelta(seconds=1))
        assert run.events.wait_for(
            lambda evs: sum(isinstance(e, BarEvent) and e.bar.ts == lost[-1] for e in evs) == 2
        )
        # ... then the server resends that minute after the reconnect: duplicates
        run.minute(times[15], minutes[lost[-1]] + minutes[times[15]])
        for ts in times[16:]:
            run.minute(ts, minutes[ts])
        run.finish()

    (report,) = run.system.data_manager.reports
    for row in report.rows:
        mine = [b for b in bars if b.symbol == row.symbol]
        assert (row.bars, row.quality, row.gaps_found, row.gaps_filled) == (30, 100.0, 5, 5)
        assert row.volume == sum(b.volume for b in mine)  # the resent minute counted once
        assert row.rejections == {"duplicate": 1}
        assert row.gap_ranges == []
    filled = sorted({e.bar.ts for e in run.events.of(BarEvent) if e.bar.filled})
    assert filled == lost
    counters = run.system.counters
    assert counters["feed_disconnects"] == 1 and counters["feed_subscriptions"] == 2
    assert run.system.store.count_bars() == 60  # type: ignore[attr-defined]


def test_a_silent_socket_is_reconnected_and_the_silence_backfilled(tmp_path: Path) -> None:
    session = short_session(10)
    bars, minutes = _session_bars(10)
    times = list(minutes)
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        settings = live_settings(tmp_path, server, silence_timeout_seconds=90)
        run = LiveRun(settings, server, session)
        run.start()
        for ts in times[:3]:
            run.minute(ts, minutes[ts])
        # the socket stays open but nothing comes for 100 s: the watchdog drops it
        run.clock.set(run.clock.now() + timedelta(seconds=100))
        assert run.coordinator.sink.wait_subscribed(2, WAIT)
        assert server.wait_subscriptions(2, WAIT)
        for ts in times[5:]:
            run.minute(ts, minutes[ts])
        run.finish()
    (report,) = run.system.data_manager.reports
    assert [(r.bars, r.gaps_filled) for r in report.rows] == [(10, 2), (10, 2)]
    assert run.system.counters["feed_forced_reconnects"] == 1


def test_connection_limit_is_retried_with_backoff_until_the_slot_frees(tmp_path: Path) -> None:
    session = short_session(2)
    _, minutes = _session_bars(2)
    packed = {"Content-Type": "application/msgpack"}  # as the SDK asks; else JSON text
    with (
        FakeAlpaca(KEY, SECRET) as server,
        connect(server.ws_url, additional_headers=packed) as blocker,
    ):
        blocker.recv()  # another client holds the only connection slot
        blocker.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
        assert msgpack.unpackb(blocker.recv())[0]["msg"] == "authenticated"

        def release() -> None:
            server.wait_refused(406, 2, WAIT)  # our feed was refused, and retried
            blocker.close()

        releaser = threading.Thread(target=release, daemon=True)
        releaser.start()
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()  # returns once subscribed, after the slot freed
        releaser.join(WAIT)
        for ts, group in minutes.items():
            run.minute(ts, group)
        run.finish()
    counters = run.system.counters
    assert counters["feed_server_error_406"] >= 2 and counters["feed_auth_retries"] >= 2
    assert [r.bars for r in run.system.data_manager.reports[0].rows] == [2, 2]


def test_rest_errors_are_retried_at_each_check_until_the_gap_fills(tmp_path: Path) -> None:
    session = short_session(10)
    bars, minutes = _session_bars(10)
    times = list(minutes)
    missing = times[3:5]
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        server.fail_rest(2)  # the first two REST calls answer 500
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for i, ts in enumerate(times):
            run.minute(ts, [] if ts in missing else minutes[ts])
            if 5 <= i <= 7:  # one check per minute once the gap is past the grace period
                run.clock.set(ts + MINUTE + GRACE + timedelta(seconds=1))
                assert server.wait_rest_requests(i - 4, WAIT)
        run.finish()
        requests = len(server.rest_requests)
    (report,) = run.system.data_manager.reports
    assert [(r.bars, r.quality, r.gaps_filled) for r in report.rows] == [(10, 100.0, 2)] * 2
    assert run.system.counters["fill_errors"] == 2 and requests == 3


def test_resent_bars_before_the_fill_are_rejected_as_out_of_order(tmp_path: Path) -> None:
    """A late live bar for a minute already passed is refused; REST then fills it once."""
    session = short_session(5)
    bars, minutes = _session_bars(5)
    times = list(minutes)
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        settings = live_settings(tmp_path, server, bar_grace_seconds=120)  # no check in between
        run = LiveRun(settings, server, session)
        run.start()
        run.minute(times[0], minutes[times[0]])
        run.minute(times[2], minutes[times[2]])
        run.push([bar_msg(b) for b in minutes[times[1]]], 2)  # minute 1 arrives too late
        for ts in times[3:]:
            run.minute(ts, minutes[ts])
        run.finish()
    (report,) = run.system.data_manager.reports
    for row in report.rows:
        assert (row.bars, row.gaps_filled, row.rejections) == (5, 1, {"out_of_order": 1})
        assert row.volume == sum(b.volume for b in bars if b.symbol == row.symbol)
