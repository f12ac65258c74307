"""Live bad input: bars from the future, huge volumes, impossible times, bad symbols, stop().

Each bad message must cost only itself (its neighbours in the frame arrive), be
counted with a reason, and never reach consumers or the store; stop() stores what
consumers were already given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest

import sessionflow
from sessionflow import BarEvent, DerivedBarEvent, QuoteEvent, TickEvent
from sessionflow.cli.live_cmd import health_line
from sessionflow.feeds.alpaca_parse import Malformed, parse_bar, parse_quote, parse_trade
from sessionflow.models import MAX_VOLUME, MINUTE, Tick
from sessionflow.store import DuckDBStore
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg, quote_msg, trade_msg
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

T0 = "2024-11-29T14:30:00Z"
BEYOND_DATETIME = msgpack.Timestamp(2**40, 0)  # year ~36812: no datetime holds it


def _bars(minutes: int) -> list[Any]:
    session = short_session(minutes)
    return [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]


def test_a_bar_from_the_future_is_rejected_and_the_real_one_arrives(tmp_path: Path) -> None:
    session = short_session(5)
    bars = _bars(5)
    minutes = by_minute(bars)
    times = list(minutes)
    real = next(b for b in minutes[times[3]] if b.symbol == "AAPL")
    fake = real._replace(close=real.open, high=real.open, low=real.open, volume=7)
    with FakeAlpaca(KEY, SECRET) as server:
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for i, ts in enumerate(times):
            # at the end of minute 0, a bar for minute 3 (complete only 3 minutes later)
            extra = [bar_msg(fake)] if i == 0 else None
            run.minute(ts, minutes[ts], extra)
            if i == 0:
                run.sent += 1  # the future bar is taken from the socket, then refused
                assert run.coordinator.sink.wait_taken(run.sent, WAIT)
        run.finish()
    delivered = [e.bar for e in run.events.of(BarEvent)]
    assert sorted(delivered) == sorted(bars)  # the fake never reached a consumer
    (report,) = run.system.data_manager.reports
    rows = {r.symbol: r for r in report.rows}
    assert rows["AAPL"].rejections == {"from_future": 1}  # no out_of_order, no duplicate
    assert rows["MSFT"].rejections == {}
    assert [(r.bars, r.quality) for r in report.rows] == [(5, 100.0)] * 2
    assert rows["AAPL"].volume == sum(b.volume for b in bars if b.symbol == "AAPL")
    assert run.system.counters["from_future"] == 1
    assert "1 from the future" in health_line(run.coordinator.health[0])
    stored = run.system.store.load_bars(["AAPL"], real.ts, real.ts + MINUTE)
    assert list(stored.iter_bars()) == [real]


def test_a_bar_within_the_tolerance_is_kept(tmp_path: Path) -> None:
    """A vendor clock a second ahead of ours is not 'the future'."""
    session = short_session(2)
    bars = _bars(2)
    minutes = by_minute(bars)
    with FakeAlpaca(KEY, SECRET) as server:
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for ts, group in minutes.items():
            run.clock.set(ts + MINUTE - timedelta(seconds=1))
            run.push([bar_msg(b) for b in group], len(group))
        run.finish()
    assert [r.bars for r in run.system.data_manager.reports[0].rows] == [2, 2]
    assert run.system.counters["from_future"] == 0


def test_one_bad_message_costs_only_itself(tmp_path: Path) -> None:
    session = short_session(3)
    bars = _bars(3)
    minutes = by_minute(bars)
    big = bars[0]._replace(volume=MAX_VOLUME)  # the bound itself is accepted
    with FakeAlpaca(KEY, SECRET) as server:
        settings = live_settings(tmp_path, server, quotes=True, trades=True)
        run = LiveRun(settings, server, session)
        run.start()
        for i, (ts, group) in enumerate(minutes.items()):
            run.clock.set(ts + MINUTE)
            good = [bar_msg(big if b == bars[0] else b) for b in group]
            bad = [
                {**good[0], "v": 2**63},  # msgpack uint64: the crash
                {**good[0], "v": MAX_VOLUME + 1},
                {**good[0], "t": msgpack.Timestamp.from_unix_nano(253_370_764_800 * 10**9)},
                {**good[0], "t": BEYOND_DATETIME},  # dropped the whole frame before
                {**good[0], "S": "AA PL"},
                {**good[0], "S": "A,B"},
                {**good[0], "S": 7},
                {**quote_msg("AAPL", ts, 10.0, 10.1), "bs": 2**63},
                {**trade_msg(Tick("MSFT", ts, 10.0, 1, 9)), "s": 2**64 - 1},
            ]
            good[1]["S"] = f" {good[1]['S'].lower()} "  # normalised, then accepted
            frame = [bad[0], good[0], *bad[1:5], good[1], *bad[5:]]
            trade = trade_msg(Tick("MSFT", ts + timedelta(seconds=5), 10.0, 3, i + 1))
            server.push_raw(msgpack.packb([*frame, trade]))  # one frame, sent as is
            run.sent += len(good) + 1
            assert run.coordinator.sink.wait_taken(run.sent, WAIT)
        run.finish()
    assert run.system.error is None
    counters = run.system.counters
    assert counters.get("feed_malformed_frame", 0) == 0  # no frame was lost
    assert counters["feed_malformed_bar"] == 7 * 3
    assert counters["feed_malformed_quote"] == 3 and counters["feed_malformed_trade"] == 3
    assert counters["feed_malformed_reason_volume_out_of_range"] == 4 * 3
    assert counters["feed_malformed_reason_time_out_of_range"] == 2 * 3
    assert counters["feed_malformed_reason_bad_symbol"] == 3 * 3
    assert run.coordinator.health[0]["feed_malformed"] == 27
    (report,) = run.system.data_manager.reports
    assert [(r.bars, r.quality, r.rejections) for r in report.rows] == [(3, 100.0, {})] * 2
    aapl = report.rows[0]
    expected = MAX_VOLUME + sum(b.volume for b in bars if b.symbol == "AAPL") - bars[0].volume
    assert aapl.volume == expected > 0  # the sum at the bound does not wrap
    derived = [e.bar for e in run.events.of(DerivedBarEvent) if e.bar.symbol == "AAPL"]
    assert derived and {b.volume for b in derived if b.minutes == 3} == {expected}
    assert len(run.events.of(BarEvent)) == 6 and len(run.events.of(TickEvent)) == 3
    assert run.events.of(QuoteEvent) == []
    assert run.system.store.count_bars() == 6  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2**63}, "volume_out_of_range"),
        ({"v": 1e300}, "volume_out_of_range"),
        ({"t": BEYOND_DATETIME}, "time_out_of_range"),
        ({"t": "9999-12-31T23:59:00Z"}, "time_out_of_range"),
        ({"t": msgpack.Timestamp(-60, 0)}, "time_out_of_range"),
        ({"S": "AA PL"}, "bad_symbol"),
        ({"S": ""}, "bad_symbol"),
        ({"S": "A\x00"}, "bad_symbol"),
        ({"o": None}, "bad_number"),
        ({}, None),
    ],
)
def test_parse_bar_bounds_and_reasons(change: dict[str, object], reason: str | None) -> None:
    msg = {"S": " aapl", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": MAX_VOLUME, "t": T0}
    if reason is None:
        bar = parse_bar({**msg, **change})
        assert (bar.symbol, bar.volume) == ("AAPL", MAX_VOLUME)
        return
    with pytest.raises(Malformed) as err:
        parse_bar({**msg, **change})
    assert err.value.reason == reason


def test_quote_and_trade_sizes_are_bounded() -> None:
    q = {"S": "AAPL", "bp": 1.0, "bs": 2**63, "ap": 1.1, "as": 1, "t": T0}
    with pytest.raises(Malformed, match="volume_out_of_range"):
        parse_quote(q)
    t = {"S": "AAPL", "p": 1.0, "s": MAX_VOLUME + 1, "i": 1, "t": T0}
    with pytest.raises(Malformed) as err:
        parse_trade(t)
    assert err.value.reason == "volume_out_of_range"


def test_stop_stores_the_bars_consumers_already_have(tmp_path: Path) -> None:
    session = short_session(20)
    minutes = by_minute(_bars(20))
    times = list(minutes)[:9]
    with FakeAlpaca(KEY, SECRET) as server:
        settings = live_settings(tmp_path, server, batch_seconds=10**6)  # 500 rows or the close
        run = LiveRun(settings, server, session)
        run.start()
        for ts in times:
            run.minute(ts, minutes[ts])
        assert run.events.wait_for(lambda evs: sum(isinstance(e, BarEvent) for e in evs) == 18)
        run.system.stop()  # mid-session, as Ctrl-C does
    delivered = [e.bar for e in run.events.of(BarEvent)]
    assert len(delivered) == 18
    assert run.system.counters["flushed_on_stop"] == 18
    store = run.system.store
    stored = store.load_bars(["AAPL", "MSFT"], session.open, session.close)
    assert sorted(stored.iter_bars()) == sorted(delivered)


def _cli(
    tmp_path: Path, server: FakeAlpaca, start: str, symbols: str = "AAPL,MSFT"
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(sessionflow.__file__).parents[1]),
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
        "SESSIONFLOW_LIVE__BATCH_SECONDS": "100000",
        "SESSIONFLOW_LIVE__SILENCE_TIMEOUT_SECONDS": "100000",
    }
    args = ["live", "--symbols", symbols, "--feed-url", server.ws_url]
    args += ["--rest-url", server.rest_url, "--store", str(tmp_path / "live.duckdb")]
    args += ["--clock-start", start, "--clock-rate", "60"]
    code = "from sessionflow.cli.app import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_ctrl_c_in_the_cli_stores_what_was_delivered_and_says_so(tmp_path: Path) -> None:
    """Joined ten minutes late: REST fills 18 bars (minute 5 missing, so it asks again)."""
    session = short_session(30)
    bars = [b for b in _bars(30) if b.ts < session.open + 10 * MINUTE]
    have = [b for b in bars if b.ts != session.open + 5 * MINUTE]
    start = (session.open + 10 * MINUTE + timedelta(seconds=11)).isoformat()
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(have)
        proc = _cli(tmp_path, server, start)
        try:
            # the second request comes only after the coordinator took the first fill
            assert server.wait_rest_requests(2, 60)
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    assert "stopped: 18 pending rows written to the store" in output
    store = DuckDBStore(tmp_path / "live.duckdb")
    stored = store.load_bars(["AAPL", "MSFT"], session.open, session.close)
    got = sorted((b.symbol, b.ts, b.close, b.volume) for b in stored.iter_bars())
    assert got == sorted((b.symbol, b.ts, b.close, b.volume) for b in have)
    store.close()


def test_cli_symbols_are_normalised_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sessionflow.cli.app import app

    with FakeAlpaca(KEY, SECRET) as server:
        args = ["live", "--symbols", "AAPL,,MSFT", "--feed-url", server.ws_url]
        args += ["--store", str(tmp_path / "x.duckdb"), "--clock-start", "2024-11-29T12:59-05:00"]
        args += ["--clock-rate", "60"]
        result = CliRunner().invoke(
            app, args, env={"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
        )
        assert result.exit_code == 2
        assert "symbol '' is empty" in result.output and "Traceback" not in result.output
        start = datetime(2024, 11, 29, 17, 57, tzinfo=UTC).isoformat()  # three minutes before close
        proc = _cli(tmp_path, server, start, symbols=" aapl , Msft")
        output, _ = proc.communicate(timeout=60)
        subs = [m for m in server.received if m.get("action") == "subscribe"]
    assert proc.returncode == 0, output
    assert subs and sorted(subs[0]["bars"]) == ["AAPL", "MSFT"]


def test_stop_from_a_consumer_callback_stores_what_was_delivered(tmp_path: Path) -> None:
    session = short_session(5)
    minutes = by_minute(_bars(5))
    first = next(iter(minutes))
    errors: list[BaseException] = []
    with FakeAlpaca(KEY, SECRET) as server:
        run = LiveRun(live_settings(tmp_path, server), server, session)

        def stop_on_first_bar(ev: Any) -> None:
            if isinstance(ev, BarEvent) and ev.bar.symbol == "MSFT":
                try:
                    run.system.stop()  # on the live thread itself
                except BaseException as exc:
                    errors.append(exc)

        run.system.on_event(stop_on_first_bar)
        run.start()
        run.minute(first, minutes[first])
        assert run.system.wait(WAIT)
        run.coordinator.join(WAIT)
    assert errors == [] and not run.coordinator.alive
    assert run.system.counters["flushed_on_stop"] == 2
    assert run.system.store.count_bars() == 2  # type: ignore[attr-defined]
