"""The local server is as strict as Alpaca's stream, and the project names each refusal.

Documented behaviour (docs.alpaca.markets/docs/streaming-market-data and
/docs/real-time-stock-pricing-data): a feed outside the key's plan fails
authentication (409); errors 403 already authenticated, 404 auth timeout, 405 symbol
limit exceeded (free plan: 30 symbols for trades and quotes, bars unlimited), 406
connection limit, 407 slow client, 500 internal error; JSON text unless the client
asks for msgpack; subscription acks with every channel key.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest
from pydantic import SecretStr
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from sessionflow import Settings, build_system
from sessionflow.feeds.alpaca_rest import AlpacaRestGapFill
from sessionflow.feeds.base import FeedAuthError, FeedError
from sessionflow.feeds.credentials import AlpacaCredentials
from sessionflow.models import MINUTE, Bar, to_us
from sessionflow.testing.alpaca_server import FakeAlpaca
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

ACK_KEYS = {"T", "trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds"}


def _recv(ws: ClientConnection) -> list[dict[str, Any]]:
    raw = ws.recv(timeout=WAIT)
    out: list[dict[str, Any]] = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
    return out


@contextlib.contextmanager
def _open(server: FakeAlpaca, feed: str = "iex", packed: bool = True) -> Iterator[ClientConnection]:
    headers = {"Content-Type": "application/msgpack"} if packed else {}
    with connect(server.url_for(feed), additional_headers=headers) as ws:
        assert _recv(ws) == [{"T": "success", "msg": "connected"}]
        yield ws


def _send(ws: ClientConnection, msg: dict[str, Any], packed: bool = True) -> None:
    ws.send(msgpack.packb(msg) if packed else json.dumps(msg))


def _auth(ws: ClientConnection, packed: bool = True) -> list[dict[str, Any]]:
    _send(ws, {"action": "auth", "key": KEY, "secret": SECRET}, packed)
    return _recv(ws)


def test_json_unless_msgpack_is_asked_for_and_acks_carry_every_key() -> None:
    with FakeAlpaca(KEY, SECRET) as server, _open(server, packed=False) as ws:
        assert _auth(ws, packed=False) == [{"T": "success", "msg": "authenticated"}]
        _send(ws, {"action": "subscribe", "bars": ["AAPL"]}, packed=False)
        raw = ws.recv(timeout=WAIT)
        assert isinstance(raw, str)  # JSON text frame
        (ack,) = json.loads(raw)
        assert set(ack) == ACK_KEYS and ack["bars"] == ["AAPL"]
        assert _auth(ws, packed=False) == [
            {"T": "error", "code": 403, "msg": "already authenticated"}
        ]


def test_feed_outside_the_plan_fails_authentication() -> None:
    with FakeAlpaca(KEY, SECRET, plan="basic") as server:
        for feed in ("iex", "delayed_sip"):
            with _open(server, feed) as ws:
                assert _auth(ws) == [{"T": "success", "msg": "authenticated"}]
        with _open(server, "sip") as ws:
            assert _auth(ws) == [{"T": "error", "code": 409, "msg": "insufficient subscription"}]
    with FakeAlpaca(KEY, SECRET, plan="algo_trader_plus") as server, _open(server, "sip") as ws:
        assert _auth(ws) == [{"T": "success", "msg": "authenticated"}]


def test_auth_timeout_symbol_limit_slow_client_and_internal_error() -> None:
    with FakeAlpaca(KEY, SECRET, auth_timeout_s=0.2, max_connections=3) as server:
        with _open(server) as ws:  # never authenticates
            assert _recv(ws) == [{"T": "error", "code": 404, "msg": "auth timeout"}]
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=WAIT)
        with _open(server) as ws:
            _auth(ws)
            many = [f"S{i}" for i in range(31)]
            _send(ws, {"action": "subscribe", "quotes": many})
            assert _recv(ws) == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
            _send(ws, {"action": "subscribe", "bars": many * 2, "quotes": many[:30]})
            (ack,) = _recv(ws)  # bars are unlimited, 30 quote symbols are allowed
            assert len(ack["bars"]) == 31 and len(ack["quotes"]) == 30
            server.send_error(407)
            assert _recv(ws) == [{"T": "error", "code": 407, "msg": "slow client"}]
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=WAIT)
        with _open(server) as ws:
            _auth(ws)
            _send(ws, {"action": "subscribe", "bars": ["AAPL"]})
            _recv(ws)
            server.send_error(500)
            assert _recv(ws) == [{"T": "error", "code": 500, "msg": "internal error"}]


def test_a_feed_the_key_lacks_is_one_clear_error_naming_it(tmp_path: Path) -> None:
    with FakeAlpaca(KEY, SECRET, plan="basic") as server:
        settings = live_settings(tmp_path, server, feed="sip", feed_url=server.url_for("sip"))
        system = build_system(settings)
        with pytest.raises(FeedAuthError) as caught:
            system.run()
        assert server.refused[409] == 1  # not retried
    text = str(caught.value)
    assert "'sip'" in text and "409 insufficient subscription" in text
    assert "iex" in text and "delayed_sip" in text


def test_the_symbol_limit_is_one_clear_error(tmp_path: Path) -> None:
    with FakeAlpaca(KEY, SECRET, plan="basic") as server:
        base = live_settings(tmp_path, server, quotes=True)
        symbols = [f"S{i:02d}" for i in range(31)]
        settings = Settings.load(
            mode="live", store_path=base.store_path, symbols=symbols, trailing_days=0,
            live=base.live.model_dump() | {"key_id": KEY, "secret_key": SECRET},
        )  # fmt: skip
        system = build_system(settings)
        with pytest.raises(FeedError, match="405 symbol limit exceeded") as caught:
            system.run()
    assert "30 symbols" in str(caught.value) and "bars" in str(caught.value)
    assert server.refused[405] == 1


def test_delayed_sip_is_a_supported_feed(tmp_path: Path) -> None:
    with FakeAlpaca(KEY, SECRET, plan="basic") as server:
        settings = live_settings(
            tmp_path, server, feed="delayed_sip", feed_url=server.url_for("delayed_sip")
        )
        assert settings.live.feed == "delayed_sip"
        system = build_system(settings)
        system.start()
        try:
            assert server.wait_subscriptions(1, WAIT)
        finally:
            system.stop()


def test_slow_client_and_internal_error_are_counted_and_the_session_ends_whole(
    tmp_path: Path,
) -> None:
    session = short_session(8)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    t = list(minutes)
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        for ts in t[:3]:
            run.minute(ts, minutes[ts])
        server.send_error(500)  # reported; the connection stays
        server.send_error(407)  # reported, then the server closes the socket
        assert run.coordinator.sink.wait_subscribed(2, WAIT)  # the SDK reconnected
        for ts in t[3:5]:
            run.minute(ts, [])  # lost while away: REST fills them
        for ts in t[5:]:
            run.minute(ts, minutes[ts])
        run.finish()
    counters = run.system.counters
    assert counters["feed_server_error_407"] == 1 and counters["feed_server_error_500"] == 1
    for row in run.system.data_manager.reports[0].rows:
        assert (row.bars, row.gaps_filled) == (8, 2)


@pytest.mark.parametrize(
    ("plan", "stream", "rest"),
    [
        ("basic", "iex", "iex"),
        ("basic", "delayed_sip", "sip"),  # SIP 15 minutes old is the free plan's
        ("algo_trader_plus", "sip", "sip"),
        ("algo_trader_plus", "iex", "iex"),  # gaps of an IEX stream are IEX bars
    ],
)
def test_each_backfill_asks_for_the_feed_its_plan_allows(
    tmp_path: Path, plan: str, stream: str, rest: str
) -> None:
    """The server judges "recent" by the session's clock (2024-11-29 here), as Alpaca
    judges it by the present: SIP newer than 15 minutes is refused (403) on the basic
    plan, so a backfill asking for it there would fill nothing."""
    session = short_session(4)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    t = list(minutes)
    with FakeAlpaca(KEY, SECRET, plan=plan) as server:
        server.add_rest_bars(bars)
        settings = live_settings(tmp_path, server, feed=stream, feed_url=server.url_for(stream))
        run = LiveRun(settings, server, session)
        run.start()
        run.minute(t[0], minutes[t[0]])
        for ts in t[1:3]:
            run.minute(ts, [])  # lost: the backfill asks REST for them
        run.minute(t[3], minutes[t[3]])
        # a delayed_sip session ends (and its gaps are due) 15 minutes after its close
        run.finish(session.close + timedelta(minutes=15) if stream == "delayed_sip" else None)
        asked = [dict(q) for q in server.rest_requests]
    assert asked and {q["feed"] for q in asked} == {rest}
    newest = max(datetime.fromisoformat(q["end"]) for q in asked)
    if plan == "basic" and rest == "sip":
        assert newest + MINUTE <= run.clock.now() - timedelta(minutes=15)
    assert run.system.counters["fill_errors"] == 0
    for row in run.system.data_manager.reports[0].rows:
        assert (row.bars, row.gaps_filled) == (4, 2)


def test_a_delayed_sip_backfill_waits_until_the_minutes_are_15_minutes_old() -> None:
    creds = AlpacaCredentials(key_id=SecretStr(KEY), secret_key=SecretStr(SECRET))
    now = datetime(2024, 11, 29, 15, 0, tzinfo=UTC)
    bars = [Bar("AAPL", now - m * MINUTE, 10.0, 11.0, 9.0, 10.5, 100) for m in (5, 16, 20)]
    with FakeAlpaca(KEY, SECRET, plan="basic", now=lambda: now) as server:
        server.add_rest_bars(bars)
        gap = AlpacaRestGapFill(creds, url=server.rest_url, feed="delayed_sip", now=lambda: now)
        got = gap.find_bars([(b.symbol, to_us(b.ts)) for b in bars])
        assert [q["feed"] for q in server.rest_requests] == ["sip"]
    assert sorted(b.ts for b in got.iter_bars()) == [now - 20 * MINUTE, now - 16 * MINUTE]
