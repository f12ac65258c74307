"""A local server that speaks Alpaca's market-data v2 protocols on 127.0.0.1.

Why it exists: the live path must be tested against the real SDK over real
sockets, not a mocked client. This server answers the SDK exactly as Alpaca does:

- websocket on ``/v2/{feed}``, every frame an array of maps, msgpack when the client
  sends ``Content-Type: application/msgpack`` (the SDK does), JSON text otherwise: on
  connect ``[{"T":"success","msg":"connected"}]``; ``{"action":"auth","key","secret"}``
  gets ``authenticated``, or one of the documented errors (``ERRORS``): 402 bad keys,
  409 a feed outside the ``plan``, 406 when ``max_connections`` sessions are open, 403
  a second auth, 404 no auth within ``auth_timeout_s``; 405 when the basic plan
  subscribes more than 30 symbols to trades and quotes; ``send_error`` sends 407 slow
  client (then closes) or 500 internal error;
  ``{"action":"subscribe","bars":[..],"quotes":[..],"trades":[..]}`` gets a
  ``{"T":"subscription",...}`` ack; data goes only to connections subscribed to the
  symbol, as ``{"T":"b","S","o","h","l","c","v","t"}`` (``t`` a msgpack Timestamp), and
  corrections as ``"T":"u"`` to ``updatedBars`` subscribers;
- REST ``GET /v2/stocks/bars?symbols=A,B&timeframe=1Min&start&end&limit&page_token``
  with ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers, answering
  ``{"bars": {"A": [{"t","o","h","l","c","v","n","vw"}]}, "next_page_token"}``; a page
  holds at most ``limit`` bars of all symbols, in (symbol, time) order, and its token
  continues only the query it came from (another query's token: 422);
- REST ``GET /v2/stocks/trades`` the same way, answering
  ``{"trades": {"A": [{"t","x","p","s","c","i","z"}]}, "next_page_token"}``;
- REST ``GET /v2/stocks/quotes`` the same way, answering
  ``{"quotes": {"A": [{"t","ax","ap","as","bx","bp","bs","c","z"}]}, "next_page_token"}``;
  a bar is served once its minute has ended, a trade or a quote once its time has
  passed (by the server's clock); a parameter these endpoints do not document, a
  time that is not RFC 3339 (or a date), a ``limit`` outside 1..10000 or an unknown
  ``feed`` is 422;
- REST ``GET /v1/corporate-actions?symbols&types&start&end&limit&page_token`` answering
  ``{"corporate_actions": {"forward_splits": [...], "cash_dividends": [...]},
  "next_page_token"}`` (``limit`` 1..1000, filtered by ex-date).

Tests drive it (``push``, ``drop_connections``, ``fail_rest``); ``replay`` streams
bars on a clock for the CLI, the benchmark and demos.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import msgpack
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from sessionflow.feeds.base import QuoteUpdate
from sessionflow.models import MINUTE, Bar, Tick, from_us, to_us
from sessionflow.testing.local_server import LocalServers
from sessionflow.testing.rate_limit import RateLimiter
from sessionflow.time_provider.live_clock import WallTimeClock

_MINUTE_US = 60_000_000
_CHANNELS = {"b": "bars", "u": "updatedBars", "q": "quotes", "t": "trades"}
_ACK_KEYS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
# which stream feeds each plan may open (docs.alpaca.markets/docs/about-market-data-api)
PLANS: dict[str, frozenset[str]] = {
    "basic": frozenset({"iex", "delayed_sip"}),
    "algo_trader_plus": frozenset({"iex", "sip", "delayed_sip"}),
}
TIMEFRAMES = frozenset({"1Min", "5Min", "15Min", "1Hour", "1Day", "1Week", "1Month"})
SIP_DELAY_US = 15 * 60_000_000  # the basic plan may query SIP older than this
FREE_SYMBOL_LIMIT = 30  # basic plan: trades and quotes; bars are unlimited
# Alpaca's documented stream errors (docs.alpaca.markets/docs/streaming-market-data#errors)
ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    500: "internal error",
}


def _ts(dt: datetime) -> msgpack.Timestamp:
    return msgpack.Timestamp.from_unix_nano(to_us(dt) * 1000)


def bar_msg(bar: Bar) -> dict[str, Any]:
    """A bar as Alpaca streams it; ``t`` is the bar's open."""
    return {
        "T": "b",
        "S": bar.symbol,
        "o": bar.open,
        "h": bar.high,
        "l": bar.low,
        "c": bar.close,
        "v": bar.volume,
        "t": _ts(bar.ts),
        "n": 1,
        "vw": round((bar.high + bar.low + bar.close) / 3, 4),
    }


def updated_bar_msg(bar: Bar) -> dict[str, Any]:
    """A corrected bar (``updatedBars`` channel): same minute, recomputed after late trades."""
    return {**bar_msg(bar), "T": "u"}


def quote_msg(symbol: str, ts: datetime, bid: float, ask: float, size: int = 1) -> dict[str, Any]:
    return {
        "T": "q",
        "S": symbol,
        "bx": "V",
        "bp": bid,
        "bs": size,
        "ax": "V",
        "ap": ask,
        "as": size,
        "t": _ts(ts),
        "c": ["R"],
        "z": "C",
    }


def trade_msg(tick: Tick) -> dict[str, Any]:
    return {
        "T": "t",
        "S": tick.symbol,
        "i": tick.seq,
        "x": "V",
        "p": tick.price,
        "s": tick.size,
        "t": _ts(tick.ts),
        "c": ["@"],
        "z": "C",
    }


def rest_trade(tick: Tick) -> dict[str, Any]:
    """A trade as ``/v2/stocks/trades`` lists it (RFC 3339 time, nanoseconds)."""
    out = trade_msg(tick)
    del out["T"], out["S"]
    out["t"] = tick.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return out


def rest_quote(q: QuoteUpdate) -> dict[str, Any]:
    """A quote as ``/v2/stocks/quotes`` lists it (RFC 3339 time, nanoseconds)."""
    return {
        "t": from_us(q.ts_us).strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
        "ax": "V",
        "ap": q.ask,
        "as": q.ask_size,
        "bx": "V",
        "bp": q.bid,
        "bs": q.bid_size,
        "c": ["R"],
        "z": "C",
    }


def rest_bar(bar: Bar) -> dict[str, Any]:
    out = bar_msg(bar)
    del out["T"], out["S"]
    out["t"] = bar.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    feed: str = "iex"
    packed: bool = True  # msgpack only when the client asked for it
    subs: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def encode(self, messages: Sequence[Any]) -> bytes | str:
        return msgpack.packb(messages) if self.packed else json.dumps(messages, default=_json)

    def wants(self, msg: Any) -> bool:
        if not isinstance(msg, dict) or msg.get("T") not in _CHANNELS:
            return bool(self.subs)  # control or malformed messages go to every subscriber
        symbols = self.subs.get(_CHANNELS[msg["T"]], set())
        return "*" in symbols or msg.get("S") in symbols


class FakeAlpaca(LocalServers):
    """Websocket + REST server on 127.0.0.1 (ports 0: chosen by the OS); a context manager."""

    def __init__(
        self,
        key: str = "test-key",
        secret: str = "test-secret",
        max_connections: int = 1,
        ws_port: int = 0,
        rest_port: int = 0,
        plan: str = "basic",
        auth_timeout_s: float = 10.0,
        rate_limit: int | None = None,
        rate_window_s: float = 60.0,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__("fake-alpaca", ws_port, rest_port)
        self.key, self.secret = key, secret
        self.plan = plan
        self.feeds = PLANS[plan]
        self.auth_timeout_s = auth_timeout_s
        # what "recent" SIP data is measured from: the time of the session served. A
        # test replaying 2024 sets its session clock here (``follow``), so the plan's
        # 15-minute rule bites as it would against Alpaca on that day
        self.now: Callable[[], datetime] = now or WallTimeClock().now
        self.limiter = RateLimiter(rate_limit, rate_window_s)  # the trading server's too
        self.max_connections = max_connections
        self.received: list[dict[str, Any]] = []  # every client action, in order
        self.rest_requests: list[dict[str, str]] = []
        self._rest_bars: dict[tuple[str, int], Bar] = {}
        self._actions: list[tuple[str, dict[str, Any]]] = []
        self._rest_trades: dict[tuple[str, int, int], Tick] = {}
        self._rest_quotes: dict[tuple[str, int, int], QuoteUpdate] = {}  # (symbol, t, n)
        self._hits: dict[str, tuple[str, list[Any]]] = {}  # kind -> (query, rows) last served
        self._rest_failures = 0
        # a broken server (tests): every page of bars, trades or quotes is the first one,
        # with the same next_page_token, however the client pages
        self.ignore_page_tokens = False
        self._conns: set[_Conn] = set()
        self._cond = threading.Condition()
        self._subscriptions = 0
        self.refused: Counter[int] = Counter()  # error code -> times sent
        self.ws_url = self.rest_url = self._ws_base = ""  # set by start()

    def start(self) -> Self:
        ws_port, rest_port = self._start(self._handle, _rest_handler(self))
        self._ws_base = f"ws://127.0.0.1:{ws_port}/v2"
        self.ws_url = self.url_for("iex")
        self.rest_url = f"http://127.0.0.1:{rest_port}"
        return self

    def url_for(self, feed: str) -> str:
        """The stream URL of one feed (``/v2/{feed}``, as Alpaca's)."""
        return f"{self._ws_base}/{feed}"

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        path = request.path if request is not None else ""
        packed = (
            request is not None and request.headers.get("Content-Type") == "application/msgpack"
        )
        conn = _Conn(ws, path.rstrip("/").rsplit("/", 1)[-1], packed)
        await self._send(conn, {"T": "success", "msg": "connected"})
        deadline = asyncio.get_running_loop().time() + self.auth_timeout_s
        try:
            while True:
                wait = None
                if conn not in self._conns:
                    wait = max(0.0, deadline - asyncio.get_running_loop().time())
                try:
                    raw = await asyncio.wait_for(ws.recv(), wait)
                except TimeoutError:
                    await self._refuse(conn, 404)
                    return
                try:
                    msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
                except ValueError:
                    await self._send(conn, {"T": "error", "code": 400, "msg": ERRORS[400]})
                    continue
                self.received.append(msg)
                if not await self._action(conn, msg):
                    return
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._conns.discard(conn)

    async def _action(self, conn: _Conn, msg: dict[str, Any]) -> bool:
        """Answer one client action; False closes the connection."""
        action = msg.get("action")
        if action == "auth":
            if conn in self._conns:
                await self._refuse(conn, 403)
                return True
            if msg.get("key") != self.key or msg.get("secret") != self.secret:
                await self._refuse(conn, 402)
                return False
            if conn.feed not in self.feeds:
                await self._refuse(conn, 409)
                return False
            with self._cond:
                full = len(self._conns) >= self.max_connections
                if not full:
                    self._conns.add(conn)
            if full:
                await self._refuse(conn, 406)
                return False
            await self._send(conn, {"T": "success", "msg": "authenticated"})
        elif conn not in self._conns:
            await self._send(conn, {"T": "error", "code": 401, "msg": ERRORS[401]})
        elif action in ("subscribe", "unsubscribe"):
            subs = {k: set(conn.subs.get(k, ())) for k in _ACK_KEYS}
            for key in _ACK_KEYS:
                change = set(msg.get(key) or ())
                subs[key] = subs[key] | change if action == "subscribe" else subs[key] - change
            if "sip" not in self.feeds and len(subs["trades"] | subs["quotes"]) > FREE_SYMBOL_LIMIT:
                await self._refuse(conn, 405)
                return True
            conn.subs.update(subs)
            ack = {"T": "subscription", **{k: sorted(conn.subs.get(k, ())) for k in _ACK_KEYS}}
            await self._send(conn, ack)
            with self._cond:
                self._subscriptions += 1
                self._cond.notify_all()
        return True

    async def _refuse(self, conn: _Conn, code: int) -> None:
        await self._send(conn, {"T": "error", "code": code, "msg": ERRORS[code]})
        with self._cond:
            self.refused[code] += 1
            self._cond.notify_all()

    def send_error(self, code: int) -> None:
        """Send a documented runtime error (407 slow client, 500 internal error) to every
        connection; Alpaca closes a slow client's connection after telling it."""
        with self._cond:
            conns = list(self._conns)
            if code == 407:
                self._conns.clear()

        async def go() -> None:
            for conn in conns:
                with contextlib.suppress(ConnectionClosed):
                    await self._refuse(conn, code)
                    if code == 407:
                        await conn.ws.close()

        self.run(go())

    def wait_refused(self, code: int, count: int = 1, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.refused[code] >= count, timeout)

    @staticmethod
    async def _send(conn: _Conn, msg: dict[str, Any]) -> None:
        await conn.ws.send(conn.encode([msg]))

    async def broadcast(self, messages: Sequence[Any]) -> None:
        """One frame per connection with the messages it subscribed to."""
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            mine = [m for m in messages if conn.wants(m)]
            if mine:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(conn.encode(mine))

    async def broadcast_raw(self, frame: bytes) -> None:
        with self._cond:
            conns = [c for c in self._conns if c.subs]
        for conn in conns:
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(frame)

    def push(self, messages: Sequence[Any]) -> None:
        """Send now and wait until written to every subscribed socket."""
        self.run(self.broadcast(messages))

    def push_raw(self, frame: bytes) -> None:
        self.run(self.broadcast_raw(frame))

    def drop_connections(self) -> int:
        """Abort every socket without a close frame, as a network failure would."""
        with self._cond:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            self.loop.call_soon_threadsafe(conn.ws.transport.abort)
        return len(conns)

    @property
    def subscriptions(self) -> int:
        with self._cond:
            return self._subscriptions

    def wait_subscriptions(self, count: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._subscriptions >= count, timeout)

    def follow(self, now: Callable[[], datetime]) -> None:
        """Judge "recent" (REST SIP on the basic plan) by ``now``: the session's clock."""
        self.now = now

    def replay(
        self, bars: Iterable[Bar], clock: WallTimeClock, delay_s: float = 0.5
    ) -> concurrent.futures.Future[None]:
        """Stream each minute's bars once ``clock`` passes that minute's end plus ``delay_s``;
        REST judges "recent" by the same clock."""
        self.follow(clock.now)
        by_minute: dict[datetime, list[Bar]] = defaultdict(list)
        for bar in bars:
            by_minute[bar.ts].append(bar)

        async def go() -> None:
            for ts in sorted(by_minute):
                due = ts + MINUTE + timedelta(seconds=delay_s)
                await asyncio.sleep(max(0.0, clock.real_seconds_until(due)))
                await self.broadcast([bar_msg(b) for b in by_minute[ts]])

        return asyncio.run_coroutine_threadsafe(go(), self.loop)

    def add_rest_bars(self, bars: Iterable[Bar]) -> None:
        with self._cond:
            self._hits.clear()
            for b in bars:
                self._rest_bars[(b.symbol, to_us(b.ts))] = b

    def wait_rest_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.rest_requests) >= count, timeout)

    def limit_rest(self, count: int, reset_in_s: float) -> None:
        """The next ``count`` REST requests answer 429, the window reopening in ``reset_in_s``
        (tests: a rate limit met at a known request, whatever the machine's speed)."""
        with self._cond:
            self.limiter.force(count, reset_in_s)

    @property
    def rate_limit(self) -> int | None:
        """REST requests per window; None: no limit (tests lift it mid-run)."""
        return self.limiter.limit

    @rate_limit.setter
    def rate_limit(self, limit: int | None) -> None:
        with self._cond:
            self.limiter.limit = limit

    @property
    def rate_limited(self) -> int:
        """429s sent."""
        return self.limiter.limited

    def fail_rest(self, count: int) -> None:
        """The next ``count`` REST requests answer 500."""
        with self._cond:
            self._rest_failures = count

    def add_rest_trades(self, ticks: Iterable[Tick]) -> None:
        """Trades ``/v2/stocks/trades`` serves (keyed by symbol, time and trade id)."""
        with self._cond:
            self._hits.clear()
            for t in ticks:
                self._rest_trades[(t.symbol, to_us(t.ts), t.seq)] = t

    def add_rest_quotes(self, quotes: Iterable[QuoteUpdate]) -> None:
        """Quotes ``/v2/stocks/quotes`` serves, in the order given within one microsecond."""
        with self._cond:
            self._hits.clear()
            for q in quotes:
                self._rest_quotes[(q.symbol, q.ts_us, len(self._rest_quotes))] = q

    def _rows(self, kind: str) -> list[tuple[tuple[Any, ...], Any]]:
        """Everything ``kind`` holds, in (symbol, time) order (call with the lock held)."""
        held: dict[str, Any] = {
            "bars": self._rest_bars, "trades": self._rest_trades, "quotes": self._rest_quotes
        }  # fmt: skip
        return sorted(held[kind].items(), key=lambda kv: kv[0])

    def _bars_page(
        self, query: dict[str, str], kind: str = "bars"
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One page of ``/v2/stocks/bars`` (``trades``, ``quotes``): (status, body, headers)."""
        with self._cond:
            self.rest_requests.append(query if kind == "bars" else {"path": kind, **query})
            self._cond.notify_all()
            headers, limited = self._rate()
            if limited:
                return 429, {"message": "too many requests"}, headers
            if self._rest_failures > 0:
                self._rest_failures -= 1
                return 500, {"code": 50010000, "message": "internal server error"}, headers
            cached = self._hits.get(kind)
            # a token's next page reuses its query's hits; a first page is looked up anew
            same = bool(query.get("page_token")) and (cached or ("",))[0] == _query_id(query)
            rows = [] if same else self._rows(kind)
        problem = self._bad_params(query, kind)
        if problem is not None:
            status, text = problem
            return status, {"code": status * 100000 + 10000, "message": text}, headers
        symbols = set(query.get("symbols", "").split(","))
        lo, hi = _parse_time(query.get("start"), 0), _parse_time(query.get("end"), 2**62)
        if same and cached is not None:
            hits = cached[1]  # the next page of the same query: not sorted and filtered again
        else:
            # what exists by the server's clock: a bar once its minute has ended, a trade
            # or a quote once sent (a replayed session's REST must not hand out its future)
            ends = to_us(self.now()) - (_MINUTE_US if kind == "bars" else 0)
            hits = [b for (s, ts, *_), b in rows if s in symbols and lo <= ts <= min(hi, ends)]
            with self._cond:
                self._hits[kind] = (_query_id(query), hits)
        offset = 0 if self.ignore_page_tokens else _offset(query)
        if offset is None:
            return 422, {"code": 42210000, "message": "invalid page_token"}, headers
        limit = int(query.get("limit") or 1000)
        page = hits[offset : offset + limit]
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        shown = _REST_ROWS[kind]
        for b in page:
            out[b.symbol].append(shown(b))
        more = offset + limit < len(hits)
        token = _token(query, offset + limit) if more else None
        return 200, {kind: dict(out), "next_page_token": token}, headers

    def add_corporate_actions(self, kind: str, items: Iterable[dict[str, Any]]) -> None:
        """Actions as Alpaca's ``/v1/corporate-actions`` lists them under ``kind``
        (``forward_splits``, ``reverse_splits``, ``cash_dividends``, ...)."""
        with self._cond:
            self._actions.extend((kind, dict(item)) for item in items)

    def _actions_page(self, query: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One page of ``/v1/corporate-actions``: filtered by symbols, types and ex-date."""
        with self._cond:
            self.rest_requests.append({"path": "/v1/corporate-actions", **query})
            self._cond.notify_all()
            headers, limited = self._rate()
            if limited:
                return 429, {"message": "too many requests"}, headers
            items = list(self._actions)
        limit = query.get("limit", "100")
        if not (limit.isdigit() and 1 <= int(limit) <= 1000):
            return 422, {"code": 42210000, "message": f"invalid limit: {limit!r}"}, headers
        try:
            lo = date.fromisoformat(query.get("start") or self.now().date().isoformat())
            hi = date.fromisoformat(query.get("end") or self.now().date().isoformat())
        except ValueError:
            return 422, {"code": 42210000, "message": "invalid start or end"}, headers
        symbols = set(query["symbols"].split(",")) if query.get("symbols") else None
        types = {t + "s" for t in query["types"].split(",")} if query.get("types") else None
        hits = [
            (kind, item)
            for kind, item in items
            if (symbols is None or item.get("symbol") in symbols)
            and (types is None or kind in types)
            and lo <= date.fromisoformat(str(item.get("ex_date"))) <= hi
        ]
        offset = _offset(query)
        if offset is None:
            return 422, {"code": 42210000, "message": "invalid page_token"}, headers
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for kind, item in hits[offset : offset + int(limit)]:
            out[kind].append(item)
        more = offset + int(limit) < len(hits)
        token = _token(query, offset + int(limit)) if more else None
        return 200, {"corporate_actions": dict(out), "next_page_token": token}, headers

    def _bad_params(self, query: dict[str, str], kind: str = "bars") -> tuple[int, str] | None:
        """Alpaca's parameter checks: 422 for bad values, 403 for recent SIP off-plan."""
        unknown = sorted(set(query) - REST_PARAMS[kind])
        if unknown:
            return 422, f"unknown query parameter(s): {', '.join(unknown)}"
        if not query.get("symbols"):
            return 422, "symbols is required"
        if kind == "bars" and query.get("timeframe") not in TIMEFRAMES:
            return 422, f"invalid timeframe: {query.get('timeframe')!r}"
        if kind == "bars" and query.get("timeframe") != "1Min":
            return 422, "this local server holds 1Min bars only"
        limit = query.get("limit")
        if limit is not None and not (limit.isdigit() and 1 <= int(limit) <= 10_000):
            return 422, f"invalid limit: {limit!r} (1 to 10000)"
        feed = query.get("feed", "sip" if "sip" in self.feeds else "iex")
        if feed not in ("iex", "sip", "delayed_sip", "otc", "boats", "overnight"):
            return 422, f"invalid feed: {feed!r}"
        try:
            lo, hi = _parse_time(query.get("start"), 0), _parse_time(query.get("end"), 2**62)
        except ValueError:
            return 422, "invalid start or end: RFC 3339 (or YYYY-MM-DD) expected"
        if hi < lo:
            return 422, "end should not be before start"
        recent = to_us(self.now()) - SIP_DELAY_US
        if feed == "sip" and "sip" not in self.feeds and min(hi, to_us(self.now())) > recent:
            return 403, "subscription does not permit querying recent SIP data"
        return None

    def _rate(self) -> tuple[dict[str, str], bool]:
        """Count one request in the current window (call with the lock held)."""
        return self.limiter.count()


def _json(value: Any) -> Any:
    """JSON mode sends times as RFC 3339 strings, as Alpaca does."""
    if isinstance(value, msgpack.Timestamp):
        return value.to_datetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"not JSON serialisable: {value!r}")


_RFC3339 = re.compile(
    r"(?P<day>\d{4}-\d{2}-\d{2})(?:(?P<time>T\d{2}:\d{2}:\d{2})(?P<fraction>\.\d{1,9})?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2}))?"
)
# the query parameters Alpaca documents for each historical endpoint
_COMMON = frozenset({"symbols", "start", "end", "limit", "asof", "feed", "currency",
                     "page_token", "sort"})  # fmt: skip
REST_PARAMS = {
    "bars": _COMMON | {"timeframe", "adjustment"},
    "trades": _COMMON,
    "quotes": _COMMON,
}
_REST_ROWS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "bars": rest_bar, "trades": rest_trade, "quotes": rest_quote
}  # fmt: skip
_TOKEN_KEYS = ("symbols", "timeframe", "start", "end", "feed", "types", "sort", "adjustment")


def _query_id(query: dict[str, str]) -> str:
    """What a page token is bound to: Alpaca's tokens continue the query they came from."""
    return json.dumps([query.get(k) for k in _TOKEN_KEYS])


def _token(query: dict[str, str], offset: int) -> str:
    raw = json.dumps({"q": _query_id(query), "o": offset})
    return base64.b64encode(raw.encode()).decode()


def _offset(query: dict[str, str]) -> int | None:
    """The offset a ``page_token`` continues from (0 without one); None for a token
    that is not one of ours or belongs to another query."""
    text = query.get("page_token")
    if not text:
        return 0
    try:
        got = json.loads(base64.b64decode(text, validate=True))
        offset = int(got["o"])
    except (ValueError, KeyError, TypeError):
        return None
    return offset if got.get("q") == _query_id(query) and offset >= 0 else None


def _parse_time(text: str | None, default: int) -> int:
    """An RFC 3339 time (a zone required, fractions cut to microseconds) or a date."""
    if not text:
        return default
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"not RFC 3339: {text!r}")
    fraction = (m["fraction"] or "")[:7]  # the dot and at most six digits
    ts = datetime.fromisoformat(f"{m['day']}{m['time'] or ''}{fraction}{m['zone'] or ''}")
    return to_us(ts if ts.tzinfo else ts.replace(tzinfo=UTC))


_PATHS = {f"/v2/stocks/{kind}": kind for kind in REST_PARAMS}


def _rest_handler(server: FakeAlpaca) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            headers: dict[str, str] = {}
            if url.path not in _PATHS and url.path != "/v1/corporate-actions":
                status, body = 404, {"message": "not found"}
            elif (
                self.headers.get("APCA-API-KEY-ID") != server.key
                or self.headers.get("APCA-API-SECRET-KEY") != server.secret
            ):
                status, body = 403, {"message": "forbidden"}
            elif url.path == "/v1/corporate-actions":
                status, body, headers = server._actions_page(query)
            else:
                status, body, headers = server._bars_page(query, _PATHS[url.path])
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


__all__ = [
    "FakeAlpaca",
    "bar_msg",
    "quote_msg",
    "rest_bar",
    "rest_quote",
    "rest_trade",
    "trade_msg",
    "updated_bar_msg",
]
