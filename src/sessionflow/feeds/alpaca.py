"""Alpaca market-data v2 feed built on alpaca-py's ``StockDataStream``.

The SDK owns the protocol (msgpack frames, auth, subscribe, reconnect with
jittered backoff, re-subscribe). We subclass it only at four seams, because the
SDK otherwise hides what the engine needs to know:

- ``_auth``: the SDK turns every refusal into a retry, so bad keys would loop
  forever. We keep the server's code: 402/409 are fatal (``FeedAuthError``,
  raised as a BaseException so the SDK's catch-all retry loop cannot swallow it),
  anything else (406 connection limit, 404 auth timeout) is retried with backoff.
- ``_start_ws``/``_consume``: report connecting/authenticated/disconnected, and
  count a frame that is not msgpack (the SDK would log it and drop it unseen).
- ``_dispatch``: report subscription acks and server errors.
- ``_reconnect_delay``: a failed connect is logged as ONE warning line per
  reconnect attempt (what failed, attempt number, delay); the SDK's own record of
  that same failure (with a traceback) is dropped by a filter on its logger.

Messages arrive raw (``raw_data=True``) and are parsed one by one
(``alpaca_parse``) so one malformed message costs only itself: any error while
parsing one message is counted (with its reason) and the rest of its frame goes
on. Bars, quotes and trades are routed by type, not by the SDK's per-symbol
table, so a message whose symbol is spelled differently (``" aapl"``) or is not
a symbol at all is normalised or counted rather than dropped unseen. The websocket's
own DEBUG frame dump is disabled for this connection: the auth frame carries the
secret. The event loop is ours (created before the thread starts) so ``stop`` can
cancel it at any point, even before the SDK has started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgpack
import websockets
from alpaca.data.enums import DataFeed
from alpaca.data.live.stock import StockDataStream

from sessionflow.feeds.alpaca_parse import (
    Malformed,
    parse_bar,
    parse_correction,
    parse_quote,
    parse_trade,
)
from sessionflow.feeds.base import (
    Arrival,
    FeedAuthError,
    FeedError,
    FeedSink,
    FeedState,
)
from sessionflow.feeds.credentials import AlpacaCredentials

log = logging.getLogger(__name__)
SDK_LOG = logging.getLogger("alpaca.data.live.websocket")

FATAL_AUTH_CODES = frozenset({402, 409})  # auth failed, insufficient subscription
Route = Callable[[Any], Awaitable[None]]  # one raw message of one type
DELAYED_SIP_URL = "wss://stream.data.alpaca.markets/v2/delayed_sip"
SYMBOL_LIMIT = (
    "Alpaca refused the subscription ({detail}): the free plan streams trades and quotes "
    "for at most 30 symbols (bars are unlimited); subscribe fewer symbols, or bars only "
    "(no --quotes/--trades)"
)


def feed_refused(feed: str, detail: str) -> str:
    """The one error for a feed the key's plan lacks: which feed, and what to use instead."""
    return (
        f"Alpaca refused feed {feed!r} for this key ({detail}): the key's plan does not "
        "include it; use feed 'iex' (real time) or 'delayed_sip' (SIP, 15 minutes late), "
        "or upgrade the plan"
    )


_KNOWN = frozenset({"b", "u", "d", "q", "t", "s", "l", "c", "x", "o", "n"})


class _Fatal(BaseException):  # a control-flow signal, not an error
    """Escapes the SDK's ``except Exception`` reconnect loop on unrecoverable errors."""

    def __init__(self, error: FeedError) -> None:
        super().__init__(str(error))
        self.error = error


class NoFrameDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for the socket that never dumps frames (websockets does so at DEBUG)."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


class _Stream(StockDataStream):
    def __init__(
        self,
        sink: FeedSink,
        creds: AlpacaCredentials,
        url: str | None,
        feed: str,
        backoff: tuple[float, float],
    ) -> None:
        params: dict[str, Any] = {
            "ping_interval": 10,
            "ping_timeout": 180,
            "max_queue": 1024,
            "logger": NoFrameDebug(logging.getLogger("websockets.client"), {}),
        }
        super().__init__(
            creds.key_id.get_secret_value(),
            creds.secret_key.get_secret_value(),
            raw_data=True,
            # the SDK knows only iex and sip; delayed_sip is sip's protocol on its own path
            feed=DataFeed.SIP if feed == "delayed_sip" else DataFeed(feed),
            websocket_params=params,
            url_override=url or (DELAYED_SIP_URL if feed == "delayed_sip" else None),
        )
        self._reconnect_min_backoff, self._reconnect_max_backoff = backoff
        # the feed the server sees: the URL's last segment (as Alpaca's /v2/{feed})
        self._feed_name = url.rstrip("/").rsplit("/", 1)[-1] if url else feed
        self._sink = sink
        self._creds = creds
        self.routes: dict[str, Route] = {}
        self.reported: BaseException | None = None  # the last failure we logged ourselves
        self._pending: str | None = None  # ... and not yet followed by its retry line

    async def _start_ws(self) -> None:
        self._sink.set_state(FeedState.CONNECTING)
        try:
            await super()._start_ws()
        except Exception as exc:
            detail = self._creds.scrub(f"connect failed: {type(exc).__name__}: {exc}")
            self._sink.set_state(FeedState.DISCONNECTED, detail)
            self.reported, self._pending = exc, detail
            raise
        self._sink.set_state(FeedState.AUTHENTICATED)

    def _reconnect_delay(self, retries: int) -> float:
        delay = float(super()._reconnect_delay(retries))
        if self._pending is not None:
            log.warning(
                "alpaca feed: %s: %s; reconnect attempt %d in %.1fs",
                self._endpoint,
                self._pending,
                retries,
                delay,
            )
            self._pending = None
        return delay

    async def _auth(self) -> None:
        ws: Any = self._ws
        auth = {"action": "auth", "key": self._api_key, "secret": self._secret_key}
        await ws.send(msgpack.packb(auth))
        reply = msgpack.unpackb(await ws.recv())
        first = reply[0] if isinstance(reply, list) and reply and isinstance(reply[0], dict) else {}
        if first.get("T") == "success" and first.get("msg") == "authenticated":
            return
        code = first.get("code")
        detail = self._creds.scrub(f"{code} {first.get('msg', 'unexpected reply')}")
        self._sink.server_error(str(code), detail)
        if code == 409:
            raise _Fatal(FeedAuthError(feed_refused(self._feed_name, detail)))
        if code in FATAL_AUTH_CODES:
            raise _Fatal(FeedAuthError(f"Alpaca refused the connection ({detail})"))
        self._sink.count("auth_retries")
        raise ValueError(f"auth not accepted ({detail}); retrying with backoff")

    async def _consume(self) -> bool:
        while True:
            if self._ws is None:  # closed under us by reconnect(): let the SDK reconnect
                self._sink.set_state(FeedState.DISCONNECTED, "closed for reconnect")
                raise websockets.exceptions.ConnectionClosedOK(None, None)
            try:
                return bool(await super()._consume())
            except websockets.exceptions.WebSocketException as exc:
                self._sink.set_state(FeedState.DISCONNECTED, f"connection lost: {exc}")
                raise
            except Exception as exc:
                if self._ws is None or not self._should_run:
                    raise
                n = self._sink.malformed("frame", f"{type(exc).__name__}: {exc}", "bad_frame")
                _warn(n, "undecodable frame skipped (%s)", type(exc).__name__)

    async def _dispatch(self, msg: Any) -> None:
        kind = msg.get("T")
        if kind == "subscription":
            self._sink.set_state(FeedState.SUBSCRIBED)
        elif kind == "error":
            code, text = msg.get("code"), self._creds.scrub(str(msg.get("msg")))
            self._sink.server_error(str(code), f"server error {code}: {text}")
            log.warning("alpaca feed: server error %s: %s", code, text)
            if code == 405:
                raise _Fatal(FeedError(SYMBOL_LIMIT.format(detail=f"{code} {text}")))
        elif (route := self.routes.get(kind)) is not None:
            await route(msg)
        elif kind not in _KNOWN and kind != "success":
            self._sink.malformed("unknown", f"message type {kind!r}", "unknown_type")
        else:
            await super()._dispatch(msg)


class _DropReported(logging.Filter):
    """Drops the SDK's record (and traceback) of a failure the stream already logged."""

    def __init__(self, stream: _Stream) -> None:
        super().__init__()
        self._stream = stream

    def filter(self, record: logging.LogRecord) -> bool:
        reported = self._stream.reported
        if reported is None:
            return True
        if record.exc_info and record.exc_info[1] is reported:
            return False
        return not record.getMessage().endswith(str(reported))


class AlpacaFeed:
    """The :class:`~sessionflow.feeds.base.Feed` for Alpaca stocks: bars (+ quotes, trades)."""

    def __init__(
        self,
        symbols: Sequence[str],
        credentials: AlpacaCredentials,
        url: str | None = None,
        feed: str = "iex",
        quotes: bool = False,
        trades: bool = False,
        backoff: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        if not symbols:
            raise ValueError("no symbols to subscribe to")
        self.symbols = list(symbols)
        self.url = url
        self._creds = credentials
        self._feed = feed
        self._channels = (True, quotes, trades)
        self._backoff = backoff
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stream: _Stream | None = None
        self._sink: FeedSink | None = None
        self._quiet: logging.Filter | None = None

    def __repr__(self) -> str:  # never the credentials
        return f"AlpacaFeed(symbols={len(self.symbols)}, url={self.url!r}, feed={self._feed!r})"

    def start(self, sink: FeedSink) -> None:
        if self._thread is not None:
            raise RuntimeError("an AlpacaFeed starts once")
        self._sink = sink
        stream = _Stream(sink, self._creds, self.url, self._feed, self._backoff)
        bars, quotes, trades = self._channels
        if bars:
            stream.routes["b"] = _handler(sink, "bar", parse_bar)
            stream.subscribe_bars(stream.routes["b"], *self.symbols)
            stream.routes["u"] = _handler(sink, "bar", parse_correction)
            stream.subscribe_updated_bars(stream.routes["u"], *self.symbols)
        if quotes:
            stream.routes["q"] = _handler(sink, "quote", parse_quote)
            stream.subscribe_quotes(stream.routes["q"], *self.symbols)
        if trades:
            stream.routes["t"] = _handler(sink, "trade", parse_trade)
            stream.subscribe_trades(stream.routes["t"], *self.symbols)
        loop = asyncio.new_event_loop()
        self._loop, self._stream = loop, stream
        self._quiet = _DropReported(stream)
        SDK_LOG.addFilter(self._quiet)
        self._task = loop.create_task(stream._run_forever())
        self._thread = threading.Thread(
            target=self._main, args=(sink,), name="sessionflow-feed", daemon=True
        )
        self._thread.start()

    def _main(self, sink: FeedSink) -> None:
        loop, task, stream = self._loop, self._task, self._stream
        assert loop is not None and task is not None and stream is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(task)
        except _Fatal as fatal:
            sink.fail(fatal.error)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            log.exception("alpaca feed stopped")
            sink.fail(FeedError(self._creds.scrub(f"feed stopped: {type(exc).__name__}: {exc}")))
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(stream.close())
            loop.close()
            if self._quiet is not None:
                SDK_LOG.removeFilter(self._quiet)
            if sink.state is not FeedState.FAILED:
                sink.set_state(FeedState.STOPPED)

    def reconnect(self, reason: str) -> None:
        stream, loop, sink = self._stream, self._loop, self._sink
        if stream is None or loop is None or sink is None:
            return
        log.warning("alpaca feed: forcing a reconnect (%s)", reason)
        sink.count("forced_reconnects")
        with contextlib.suppress(RuntimeError):  # loop already closed: nothing to reconnect
            asyncio.run_coroutine_threadsafe(stream.close(), loop)

    def stop(self, timeout: float = 2.0) -> None:
        loop, task, thread = self._loop, self._task, self._thread
        if loop is None or task is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout)


def _handler(sink: FeedSink, kind: str, parse: Callable[[Mapping[str, Any]], Arrival]) -> Route:
    async def handle(msg: Any) -> None:
        try:
            item = parse(msg)
        except Malformed as exc:
            reason, detail = exc.reason, str(exc)
        except Exception as exc:  # whatever one message does to the parser costs only it
            reason, detail = "unreadable", f"{type(exc).__name__}: {exc}"
        else:
            sink.put((item,))
            return
        n = sink.malformed(kind, detail, reason)
        _warn(n, "malformed %s skipped: %s", kind, detail)

    return handle


def _warn(count: int, fmt: str, *args: object) -> None:
    """Log the first few of a kind, then every 1000th, so a bad stream cannot flood the log."""
    if count <= 5 or count % 1000 == 0:
        log.warning("alpaca feed: " + fmt + " [%d so far]", *args, count)
