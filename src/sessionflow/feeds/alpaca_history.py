"""Alpaca's historical REST API for downloads: bars, trades and quotes page by page, and
corporate actions.

Why not ``StockHistoricalDataClient.get_stock_bars``: it follows every
``next_page_token`` before returning, so a long download would hold everything in
memory and a Ctrl-C would lose every page read. Here each page is one request made
with alpaca-py's own request types (``StockBarsRequest``, ``StockTradesRequest``,
``StockQuotesRequest``), session and auth, and
yielded as it arrives, so the caller writes it before asking for the next.

429 answers are waited out as ``X-RateLimit-Reset`` says, without a retry limit: a
download never drops a page. Refusals that no wait cures (plan or feed not allowed,
bad keys, bad parameters) raise :class:`HistoryRefused` with the server's text; a
server error is retried ``SERVER_RETRIES`` times, then raises :class:`HistoryFailed`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.corporate_actions import CorporateActionsClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import (
    CorporateActionsRequest,
    StockBarsRequest,
    StockQuotesRequest,
    StockTradesRequest,
)
from alpaca.data.timeframe import TimeFrame
from requests import RequestException

from sessionflow.feeds.alpaca_rest import _TimeoutAdapter
from sessionflow.feeds.credentials import AlpacaCredentials

log = logging.getLogger(__name__)

PAGE_LIMIT = 10_000  # Alpaca's largest page of bars
SERVER_RETRIES = 3  # 5xx or a dropped connection, per page, before the download stops
SERVER_WAIT_S = 1.0
NEVER_DROP = 1_000_000  # 429s answered per request: in effect, wait as long as told
FEEDS = ("iex", "sip")

# symbol -> Alpaca maps (bars: t, o, h, l, c, v, ...; quotes: t, bp, bs, ap, as, ...)
Rows = dict[str, list[dict[str, Any]]]


class HistoryRefused(RuntimeError):
    """Alpaca refused the request for a reason waiting does not cure (plan, feed, keys)."""

    template = "Alpaca refused {what} (HTTP {status}: {text}){hint}"

    def __init__(self, what: str, status: int | None, text: str) -> None:
        hint = ""
        if status == 403 and "SIP" in text:
            hint = "; the key's plan does not include recent SIP data: use --feed iex"
        elif status in (401, 403):
            hint = "; check APCA_API_KEY_ID and APCA_API_SECRET_KEY and the key's plan"
        super().__init__(self.template.format(what=what, status=status, text=text, hint=hint))
        self.status = status


class HistoryFailed(RuntimeError):
    """The server kept failing (5xx, connection) after retries; pages so far are kept."""


class AlpacaHistory:
    """One download's REST clients (bars and corporate actions) on one rate-limit adapter."""

    def __init__(
        self,
        credentials: AlpacaCredentials,
        url: str | None = None,
        feed: str = "iex",
        timeout_s: float = 30.0,
        page_limit: int = PAGE_LIMIT,
        on_wait: Callable[[float], None] | None = None,
        server_wait_s: float = SERVER_WAIT_S,
    ) -> None:
        if feed not in FEEDS:
            raise ValueError(f"--feed {feed!r}: use one of {', '.join(FEEDS)}")
        key = credentials.key_id.get_secret_value()
        secret = credentials.secret_key.get_secret_value()
        self._bars = StockHistoricalDataClient(key, secret, raw_data=True, url_override=url)
        self._actions = CorporateActionsClient(key, secret, raw_data=True, url_override=url)
        self._adapter = _TimeoutAdapter(timeout_s, NEVER_DROP, on_wait)
        for client in (self._bars, self._actions):
            client._session.mount("http://", self._adapter)
            client._session.mount("https://", self._adapter)
        self._creds = credentials
        self.feed = DataFeed(feed)
        self.page_limit = page_limit
        self.server_wait_s = server_wait_s
        self.requests = 0
        self.server_errors = 0  # 5xx or connection failures retried

    def __repr__(self) -> str:  # never the credentials
        return f"AlpacaHistory(feed={self.feed.value!r})"

    @property
    def rate_limited(self) -> int:
        """429s met, each answered by waiting until the server's reset."""
        return self._adapter.rate_limited

    @property
    def rate_limit_wait_s(self) -> float:
        return self._adapter.waited_s

    def bar_pages(self, symbols: Sequence[str], start: datetime, end: datetime) -> Iterator[Rows]:
        """Raw 1-minute bars of ``symbols`` with ``start <= t <= end`` (Alpaca's end is
        inclusive), one page per item, following ``next_page_token``."""
        request = StockBarsRequest(
            symbol_or_symbols=list(symbols),
            timeframe=TimeFrame.Minute,
            start=start,
            end=end,
            feed=self.feed,
            adjustment=Adjustment.RAW,  # the store holds raw bars; actions adjust as of a date
        )
        return self._pages("/stocks/bars", "bars", request.to_request_fields(), len(symbols))

    def trade_pages(self, symbols: Sequence[str], start: datetime, end: datetime) -> Iterator[Rows]:
        """Trades of ``symbols`` with ``start <= t <= end``, one page per item."""
        request = StockTradesRequest(
            symbol_or_symbols=list(symbols), start=start, end=end, feed=self.feed
        )
        return self._pages("/stocks/trades", "trades", request.to_request_fields(), len(symbols))

    def quote_pages(self, symbols: Sequence[str], start: datetime, end: datetime) -> Iterator[Rows]:
        """NBBO updates of ``symbols`` with ``start <= t <= end``, one page per item."""
        request = StockQuotesRequest(
            symbol_or_symbols=list(symbols), start=start, end=end, feed=self.feed
        )
        return self._pages("/stocks/quotes", "quotes", request.to_request_fields(), len(symbols))

    def _pages(self, path: str, key: str, params: dict[str, Any], symbols: int) -> Iterator[Rows]:
        params["limit"] = self.page_limit
        what = f"{key} of {symbols} symbol(s)"
        token: str | None = None
        seen: set[str] = set()  # a token sent again would read the same pages forever
        while True:
            params["page_token"] = token
            page = self._get(self._bars, path, params, what)
            yield dict(page.get(key) or {})
            token = page.get("next_page_token")
            if not token:
                return
            if token in seen:
                raise HistoryFailed(f"Alpaca sent a next_page_token again on {what}; stopped")
            seen.add(token)

    def corporate_actions(
        self, symbols: Sequence[str], start: date, end: date
    ) -> dict[str, list[dict[str, Any]]]:
        """Alpaca's corporate actions of ``symbols`` in [start, end], by type
        (``forward_splits``, ``reverse_splits``, ``cash_dividends``, ...); the SDK pages."""
        request = CorporateActionsRequest(symbols=list(symbols), start=start, end=end)
        for attempt in range(SERVER_RETRIES + 1):
            self.requests += 1
            try:
                raw: Any = self._actions.get_corporate_actions(request)
                return {str(k): list(v) for k, v in (raw or {}).items() if isinstance(v, list)}
            except (APIError, RequestException) as exc:
                self._failed(exc, "corporate actions", attempt)
        raise AssertionError("unreachable")

    def _get(self, client: Any, path: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        for attempt in range(SERVER_RETRIES + 1):
            self.requests += 1
            try:
                page: Any = client.get(path, params)
                if not isinstance(page, dict):
                    raise HistoryFailed(f"Alpaca sent {what} that is not a JSON object")
                return page
            except (APIError, RequestException) as exc:
                self._failed(exc, what, attempt)
        raise AssertionError("unreachable")

    def _failed(self, exc: Exception, what: str, attempt: int) -> None:
        """Raise at once for a refusal; let the caller retry a server failure (after a wait)."""
        status = exc.status_code if isinstance(exc, APIError) else None
        text = self._creds.scrub(_message(exc))
        if status is not None and status < 500:
            raise HistoryRefused(what, status, text) from None
        if attempt >= SERVER_RETRIES:
            raise HistoryFailed(
                f"Alpaca failed {SERVER_RETRIES + 1} times on {what} ({text})"
            ) from None
        self.server_errors += 1
        log.warning("alpaca REST: %s failed (%s); retrying", what, text)
        time.sleep(self.server_wait_s * (attempt + 1))


def _message(exc: Exception) -> str:
    if isinstance(exc, APIError):
        try:
            return str(exc.message)
        except (ValueError, KeyError, TypeError):
            return str(exc)
    return f"{type(exc).__name__}: {exc}"


__all__ = ["AlpacaHistory", "HistoryFailed", "HistoryRefused", "Rows"]
