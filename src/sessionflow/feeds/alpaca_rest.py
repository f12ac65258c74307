"""Gap filling in live mode from Alpaca's historical bars (alpaca-py ``StockHistoricalDataClient``).

It implements the upkeep worker's ``GapFillSource``: ``find_bars`` returns the
wanted (symbol, minute) bars the vendor has; ``data_version`` is None because a
remote source can gain data at any time, so every check asks again (up to
``max_fill_attempts`` per minute). Wanted minutes are grouped into time ranges
(close ranges merged) and asked for all symbols at once, so a reconnect that
missed five minutes of fifty symbols costs one request, not 250. The SDK sets no
HTTP timeout; a hung request would block the upkeep thread, so one is mounted.

Which feed a backfill asks for follows the stream's (``rest_feed``), by Alpaca's
plan rules (docs.alpaca.markets/docs/about-market-data-api): an ``iex`` stream is
filled from ``iex`` (any plan; the bars the stream would have sent), a ``sip`` stream
(Algo Trader Plus) from ``sip``, and a ``delayed_sip`` stream (the free plan's SIP)
from ``sip`` for minutes that ended at least 15 minutes ago by the session's clock
only: the free plan may read historical SIP except its latest 15 minutes (403
"subscription does not permit querying recent SIP data"). Newer minutes are left
for a later check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from alpaca.data.enums import DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from sessionflow.data_upkeep import minute_ranges
from sessionflow.feeds.alpaca_parse import Malformed, parse_bar
from sessionflow.feeds.base import FeedError
from sessionflow.feeds.credentials import AlpacaCredentials
from sessionflow.models import Bar, from_us, to_us
from sessionflow.store import BarBatch

log = logging.getLogger(__name__)

_MIN_US = 60_000_000
MERGE_GAP_MINUTES = 30  # ranges closer than this are fetched as one request
RATE_RETRIES = 3  # 429s answered by waiting, per request, before it counts as a failure
MAX_RATE_WAIT_S = 60.0  # Alpaca's window is a minute
RECENT_SIP = "recent SIP data"  # in Alpaca's 403 text when the plan lacks SIP
SIP_DELAY_US = 15 * 60_000_000  # the free plan reads SIP older than this (REST)


def rest_feed(stream_feed: str) -> str:
    """The REST feed that fills gaps of a stream of ``stream_feed`` (module docstring)."""
    return "sip" if stream_feed == "delayed_sip" else stream_feed


class _TimeoutAdapter(HTTPAdapter):
    """A timeout on every request, and 429 answered by waiting as Alpaca's headers say.

    Why here and not the SDK's retry: the SDK waits a fixed 3 s whatever the server
    says. ``X-RateLimit-Reset`` is the unix second the window reopens; we wait until
    then (at most ``MAX_RATE_WAIT_S``, at least a little), up to ``RATE_RETRIES`` times.
    """

    def __init__(
        self,
        timeout_s: float,
        retries: int = RATE_RETRIES,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        """``retries``: 429s answered per request (a download passes a large number: it
        never drops a page); ``on_wait(seconds)`` is told before each wait (progress)."""
        super().__init__(max_retries=0)
        self._timeout_s = timeout_s
        self._retries = retries
        self._on_wait = on_wait
        self.rate_limited = 0
        self.waited_s = 0.0

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        timeout = self._timeout_s if timeout is None else timeout
        for _ in range(self._retries):
            response = super().send(request, stream, timeout, verify, cert, proxies)
            if response.status_code != 429:
                return response
            self.rate_limited += 1
            wait = _rate_wait(response.headers.get("X-RateLimit-Reset"))
            log.warning("alpaca REST: rate limited (429); waiting %.1fs as the server says", wait)
            if self._on_wait is not None:
                self._on_wait(wait)
            self.waited_s += wait
            time.sleep(wait)
        return super().send(request, stream, timeout, verify, cert, proxies)


def _rate_wait(reset: str | None) -> float:
    """Seconds until ``X-RateLimit-Reset`` (unix seconds), bounded; 1 s if absent or bad."""
    try:
        wait = float(reset) - time.time() if reset is not None else 1.0
    except ValueError:
        wait = 1.0
    return min(MAX_RATE_WAIT_S, max(0.05, wait))


class AlpacaRestGapFill:
    def __init__(
        self,
        credentials: AlpacaCredentials,
        url: str | None = None,
        feed: str = "iex",
        timeout_s: float = 10.0,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """``feed`` is the stream's; ``now`` the session's clock (what "the latest 15
        minutes" are measured from), wall time by default."""
        self._client = StockHistoricalDataClient(
            api_key=credentials.key_id.get_secret_value(),
            secret_key=credentials.secret_key.get_secret_value(),
            raw_data=True,
            url_override=url,
        )
        adapter = self._adapter = _TimeoutAdapter(timeout_s)
        self._client._session.mount("http://", adapter)
        self._client._session.mount("https://", adapter)
        self._feed = DataFeed(rest_feed(feed))
        # a delayed_sip stream's key may read SIP only this long after a minute ended
        self._delay_us = SIP_DELAY_US if feed == "delayed_sip" else 0
        self._now = now or (lambda: datetime.now(UTC))
        self._creds = credentials
        self.url = url
        self.requests = 0
        self.malformed = 0
        self._refused: FeedError | None = None  # a permission refusal: known, not re-asked

    @property
    def rate_limited(self) -> int:
        """429s met (each answered by waiting until the server's reset)."""
        return self._adapter.rate_limited

    @property
    def rate_limit_wait_s(self) -> float:
        return self._adapter.waited_s

    def __repr__(self) -> str:  # never the credentials
        return f"AlpacaRestGapFill(url={self.url!r}, feed={self._feed.value!r})"

    def data_version(self) -> int | None:
        return None

    def find_bars(self, wanted: Sequence[tuple[str, int]]) -> BarBatch:
        want = set(wanted)
        if self._delay_us:  # only minutes the plan may read yet; the rest wait
            newest = to_us(self._now()) - self._delay_us - _MIN_US
            want = {(s, ts) for s, ts in want if ts <= newest}
        if not want:
            return BarBatch.empty()
        symbols = sorted({s for s, _ in want})
        found: list[Bar] = []
        for lo, hi in _merged_ranges({ts for _, ts in want}):
            for bar in self._fetch(symbols, lo, hi - _MIN_US):
                if (bar.symbol, to_us(bar.ts)) in want:
                    found.append(bar)
        return BarBatch.from_bars(found)

    def _fetch(self, symbols: list[str], first_us: int, last_us: int) -> list[Bar]:
        request = StockBarsRequest(
            symbol_or_symbols=symbols,
            timeframe=TimeFrame.Minute,
            start=from_us(first_us),
            end=from_us(last_us),  # Alpaca's end is inclusive
            feed=self._feed,
        )
        if self._refused is not None:
            raise self._refused
        self.requests += 1
        try:
            raw: Any = self._client.get_stock_bars(request)
        except Exception as exc:  # the SDK's errors carry the server's text: scrub it anyway
            text = self._creds.scrub(f"{type(exc).__name__}: {exc}")
            if RECENT_SIP in text:
                self._refused = FeedError(rest_refused(self._feed.value, text))
                log.error("%s", self._refused)
                raise self._refused from None
            raise RuntimeError(text) from None
        bars: list[Bar] = []
        for symbol, rows in (raw or {}).items():
            for row in rows:
                try:
                    bars.append(parse_bar({**row, "S": symbol}))
                except (Malformed, TypeError, ValueError, OverflowError) as exc:  # only this row
                    self.malformed += 1
                    log.warning("alpaca REST: malformed bar for %s skipped: %s", symbol, exc)
        return bars


def rest_refused(feed: str, detail: str) -> str:
    """The one error for REST bars the key may not read: which feed, and what to use instead."""
    return (
        f"Alpaca REST refused bars of feed {feed!r} ({detail}); gap fills stop: the key's "
        "plan does not include recent SIP data; use feed 'iex', or 'delayed_sip' "
        "(15 minutes late), or upgrade the plan"
    )


def _merged_ranges(minutes: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in minute_ranges(minutes):
        if out and lo - out[-1][1] < MERGE_GAP_MINUTES * _MIN_US:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out
