"""REST bars as strict as Alpaca's, and a backfill that copes with each refusal.

Documented behaviour (docs.alpaca.markets historical bars and market-data FAQ):
``limit`` 1..10,000 per page and ``next_page_token`` for the rest; ``feed=sip`` for
the last 15 minutes refused without the plan ("subscription does not permit querying
recent SIP data"); 429 with ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` (unix
seconds); 422 for a bad timeframe, limit or range.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from sessionflow.feeds.alpaca_rest import AlpacaRestGapFill
from sessionflow.feeds.base import FeedError
from sessionflow.feeds.credentials import AlpacaCredentials
from sessionflow.models import MINUTE, Bar, to_us
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.time_provider import ExchangeCalendar
from tests.live_support import (
    KEY,
    SECRET,
    LiveRun,
    by_minute,
    day_bars,
    live_settings,
    short_session,
)

T0 = datetime(2024, 11, 25, 9, 0, tzinfo=UTC)
CREDS = AlpacaCredentials(key_id=SecretStr(KEY), secret_key=SecretStr(SECRET))


def _bars(symbols: list[str], n: int) -> list[Bar]:
    return [
        Bar(s, T0 + i * MINUTE, 10.0, 11.0, 9.0, 10.5, 100 + i) for s in symbols for i in range(n)
    ]


def _get(server: FakeAlpaca, **params: Any) -> requests.Response:
    base = {"symbols": "AAPL", "timeframe": "1Min", "start": T0.isoformat(), "feed": "iex"}
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    return requests.get(f"{server.rest_url}/v2/stocks/bars", {**base, **params}, headers=headers)


def test_pages_of_at_most_10000_bars_follow_next_page_token() -> None:
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(_bars(["AAPL"], 12_000))
        first = _get(server, limit=10_000).json()
        assert len(first["bars"]["AAPL"]) == 10_000 and first["next_page_token"]
        rest = _get(server, limit=10_000, page_token=first["next_page_token"]).json()
        assert len(rest["bars"]["AAPL"]) == 2_000 and rest["next_page_token"] is None
        assert len(_get(server).json()["bars"]["AAPL"]) == 1_000  # the default limit


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"timeframe": "7Sec"}, "invalid timeframe"),
        ({"limit": 0}, "invalid limit"),
        ({"limit": 10_001}, "invalid limit"),
        ({"end": (T0 - MINUTE).isoformat()}, "end should not be before start"),
        ({"feed": "nasdaq"}, "invalid feed"),
    ],
)
def test_parameter_errors_are_422(params: dict[str, Any], text: str) -> None:
    with FakeAlpaca(KEY, SECRET) as server:
        got = _get(server, **params)
    assert got.status_code == 422 and text in got.json()["message"]


def test_recent_sip_needs_the_plan() -> None:
    now = T0 + 60 * MINUTE
    with FakeAlpaca(KEY, SECRET, plan="basic") as server:
        server.now = lambda: now
        recent = _get(server, feed="sip", end=(now - 5 * MINUTE).isoformat())
        assert recent.status_code == 403
        assert recent.json()["message"] == "subscription does not permit querying recent SIP data"
        assert _get(server, feed="sip", end=(now - 16 * MINUTE).isoformat()).status_code == 200
        assert _get(server, feed="iex", end=now.isoformat()).status_code == 200
    with FakeAlpaca(KEY, SECRET, plan="algo_trader_plus") as server:
        server.now = lambda: now
        assert _get(server, feed="sip", end=now.isoformat()).status_code == 200


def test_rate_limit_answers_429_with_the_documented_headers() -> None:
    with FakeAlpaca(KEY, SECRET, rate_limit=2, rate_window_s=60) as server:
        ok = _get(server)
        assert ok.headers["X-RateLimit-Limit"] == "2" and ok.headers["X-RateLimit-Remaining"] == "1"
        _get(server)
        limited = _get(server)
    assert limited.status_code == 429
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(datetime.now(UTC).timestamp())


def test_backfill_over_more_than_10000_bars_is_complete() -> None:
    bars = _bars(["AAPL", "MSFT"], 6_000)
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        gap = AlpacaRestGapFill(CREDS, url=server.rest_url)
        got = gap.find_bars([(b.symbol, to_us(b.ts)) for b in bars])
        pages = [q for q in server.rest_requests if q.get("page_token")]
    assert len(got) == 12_000 and len(pages) >= 1


def test_429_backs_off_as_the_headers_say_and_is_counted() -> None:
    bars = _bars(["AAPL"], 3)
    with FakeAlpaca(KEY, SECRET, rate_limit=1, rate_window_s=1) as server:
        server.add_rest_bars(bars)
        gap = AlpacaRestGapFill(CREDS, url=server.rest_url)
        wanted = [(b.symbol, to_us(b.ts)) for b in bars]
        assert len(gap.find_bars(wanted)) == 3
        assert len(gap.find_bars(wanted)) == 3  # the second request met the limit, waited
        assert server.rate_limited == 1
    # the wait is computed from the header (reset - now), not measured: a loaded machine reads
    # 'now' later and waits less, so this bound (1 s window, rounded up) holds at any load
    assert gap.rate_limited == 1 and 0 < gap.rate_limit_wait_s <= 2.0


def test_a_refused_feed_is_one_clear_error_and_not_retried() -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with FakeAlpaca(KEY, SECRET, plan="basic") as server:
        gap = AlpacaRestGapFill(CREDS, url=server.rest_url, feed="sip")
        wanted = [("AAPL", to_us(now - timedelta(minutes=2)))]
        for _ in range(3):
            with pytest.raises(FeedError) as caught:
                gap.find_bars(wanted)
        assert len(server.rest_requests) == 1  # asked once, then the answer is known
    text = str(caught.value)
    assert "'sip'" in text and "recent SIP data" in text
    assert "'iex'" in text and "delayed_sip" in text


def test_a_live_backfill_met_by_429_waits_completes_and_counts_it(tmp_path: Path) -> None:
    session = short_session(4)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    t = list(minutes)
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        run = LiveRun(live_settings(tmp_path, server), server, session)
        run.start()
        run.minute(t[0], minutes[t[0]])
        server.limit_rest(1, 0.5)  # the backfill's first request meets the limit
        for ts in t[1:3]:
            run.minute(ts, [])
        run.minute(t[3], minutes[t[3]])
        run.finish()
    assert server.rate_limited == 1
    assert run.system.counters["rest_rate_limited"] == 1
    assert run.system.counters["fill_errors"] == 0  # waited, not failed
    for row in run.system.data_manager.reports[0].rows:
        assert (row.bars, row.gaps_filled) == (4, 2)
