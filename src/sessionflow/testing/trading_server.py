"""A local server that speaks Alpaca's Trading API (REST and ``trade_updates``) on 127.0.0.1.

Why it exists: the live broker must be tested against the real SDK (alpaca-py's
``TradingClient`` and ``TradingStream``) over real sockets, and a strategy must be
able to run live offline. The rules live in ``trading_book.TradingBook``; this module
carries them as https://paper-api.alpaca.markets does:

- REST with ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers (401 otherwise):
  ``POST/GET/DELETE /v2/orders``, ``GET/PATCH/DELETE /v2/orders/{id}``,
  ``GET /v2/orders:by_client_order_id``, ``GET /v2/account``,
  ``GET /v2/account/activities[/{type}]`` (FILLs: what a reconnecting client missed),
  ``GET/DELETE /v2/positions[/{symbol}]``, ``GET /v2/assets/{symbol}``, ``GET /v2/clock``;
  errors as ``{"code", "message"}``; ``X-RateLimit-Limit/-Remaining/-Reset`` on every
  answer and 429 past ``rate_limit`` requests a window (wall time: Alpaca counts real
  requests, whatever the replay speed);
- websocket ``/stream``: ``{"action":"authenticate","data":{"key_id","secret_key"}}``
  answered on the ``authorization`` stream, ``{"action":"listen","data":{"streams":
  [...]}}`` acknowledged on ``listening`` with the streams it knows, then every order
  event as ``{"stream":"trade_updates","data":{...}}``, in binary frames as the paper
  endpoint sends them. Events are not replayed to a later connection (REST is the
  record, as with Alpaca).

Time is the ``clock`` it is given (the replayed session's). ``advance()`` moves the
book to ``clock.now()``: tests call it after moving a ``ManualClock``; ``run_clock``
does it on a timer for the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from sessionflow.models import Bar
from sessionflow.testing.local_server import LocalServers
from sessionflow.testing.rate_limit import DEFAULT_LIMIT, RateLimiter
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_models import (
    ACTIVITY_TYPES,
    MAX_ACTIVITY_PAGE,
    ApiError,
    Order,
    TradeEvent,
    stamp,
    unprocessable,
)
from sessionflow.time_provider.clock import Clock

MAX_LIST = 500  # GET /v2/orders limit
DEFAULT_LIST = 50
UNAUTHORIZED = ApiError(401, 40110000, "request is not authorized")
RATE_LIMITED = ApiError(429, 42910000, "rate limit exceeded")

Reply = tuple[int, Any]


@dataclass(eq=False)
class _Listener:
    ws: ServerConnection
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)  # None: close
    authorized: bool = False
    listening: bool = False


class FakeAlpacaTrading(LocalServers):
    """Trading REST + ``trade_updates`` websocket on 127.0.0.1 (ports 0: chosen by the OS)."""

    def __init__(
        self,
        clock: Clock,
        book: TradingBook | None = None,
        *,
        key: str = "test-key",
        secret: str = "test-secret",
        rate_limit: int | None = DEFAULT_LIMIT,  # per minute per account
        rate_window_s: float = 60.0,
        ws_port: int = 0,
        rest_port: int = 0,
    ) -> None:
        super().__init__("fake-trading", ws_port, rest_port)
        self.clock = clock
        self.book = book or TradingBook()
        self.key, self.secret = key, secret
        self.limiter = RateLimiter(rate_limit, rate_window_s)
        self.lock = threading.Condition()
        self.events: list[dict[str, Any]] = []  # every trade_updates data sent, in order
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self._hold: dict[str, tuple[threading.Event, bool]] = {}  # see hold()
        self.held: list[str] = []  # holds taken, "METHOD /path"
        self._listeners: set[_Listener] = set()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self.url = self.stream_url = ""

    def start(self) -> FakeAlpacaTrading:
        ws_port, rest_port = self._start(self._stream, _handler(self))
        self.url = f"http://127.0.0.1:{rest_port}"
        self.stream_url = f"ws://127.0.0.1:{ws_port}/stream"
        return self

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(5)
        super().close()

    def add_bars(self, bars: Iterable[Bar]) -> None:
        with self.lock:
            self.book.add_bars(bars)

    def advance(self) -> list[dict[str, Any]]:
        """Move the book to the clock's now and publish what happened."""
        with self.lock:
            return self._publish(self.book.advance(self.clock.now()))

    def run_clock(self, interval_s: float = 0.05) -> None:
        """Advance on a timer (real seconds) until ``close()``: the command's mode."""

        def tick() -> None:
            while not self._stop.wait(interval_s):
                self.advance()

        self._ticker = threading.Thread(target=tick, name="fake-trading-clock", daemon=True)
        self._ticker.start()

    def _publish(self, events: list[TradeEvent]) -> list[dict[str, Any]]:
        """Queue each event to every listening socket, in order (call with the lock held)."""
        out = [e.to_json() for e in events]
        for data in out:
            frame = json.dumps({"stream": "trade_updates", "data": data}).encode()
            self.events.append(data)
            for listener in self._listeners:
                if listener.listening and not self._stop.is_set():  # a dead server sends nothing
                    self.loop.call_soon_threadsafe(listener.queue.put_nowait, frame)
        if out:
            self.lock.notify_all()
        return out

    def wait_events(self, count: int, timeout: float = 10.0) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: len(self.events) >= count, timeout)

    def wait_request(self, method: str, path: str, timeout: float = 10.0) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: (method, path) in self.requests, timeout)

    def wait_listeners(self, count: int = 1, timeout: float = 10.0) -> bool:
        with self.lock:
            return self.lock.wait_for(
                lambda: sum(1 for x in self._listeners if x.listening) >= count, timeout
            )

    def drop_connections(self) -> int:
        """Abort every stream socket without a close frame, as a network failure would."""
        with self.lock:
            listeners = list(self._listeners)
            self._listeners.clear()
        for listener in listeners:
            self.loop.call_soon_threadsafe(listener.ws.transport.abort)
        return len(listeners)

    def limit_rest(self, count: int, reset_in_s: float) -> None:
        """The next ``count`` requests answer 429, the window reopening in ``reset_in_s``."""
        with self.lock:
            self.limiter.force(count, reset_in_s)

    def hold(self, method: str, path_prefix: str, before: bool = False) -> threading.Event:
        """The next request matching ``METHOD /path...`` waits until the returned event is
        set: after it is carried out (its answer is late), or ``before`` (it arrives late).
        Tests: a submit that times out on the client, whether or not it landed."""
        release = threading.Event()
        with self.lock:
            self._hold[f"{method} {path_prefix}"] = (release, before)
        return release

    def _take_hold(self, method: str, path: str, before: bool) -> threading.Event | None:
        with self.lock:
            for key, (event, when) in list(self._hold.items()):
                if when == before and f"{method} {path}".startswith(key):
                    del self._hold[key]
                    self.held.append(key)
                    self.lock.notify_all()
                    return event
        return None

    def wait_held(self, method: str, path_prefix: str, timeout: float = 10.0) -> bool:
        """Until a request matching a ``hold`` has arrived and is being held."""
        with self.lock:
            return self.lock.wait_for(lambda: f"{method} {path_prefix}" in self.held, timeout)

    @property
    def rate_limited(self) -> int:
        """429s sent."""
        return self.limiter.limited

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, authorized: bool
    ) -> tuple[int, Any, dict[str, str]]:
        """One REST request: (status, JSON body or None, headers)."""
        early = self._take_hold(method, path, before=True)
        if early is not None:
            early.wait(30)
        with self.lock:
            self.requests.append((method, path))
            self.lock.notify_all()
            headers, limited = self.limiter.count()
            try:
                if not authorized:
                    raise UNAUTHORIZED
                if limited:
                    raise RATE_LIMITED
                self._publish(self.book.advance(self.clock.now()))
                status, out = self._route(method, path, query, body)
            except ApiError as err:
                status, out = err.status, err.body()
        late = self._take_hold(method, path, before=False)
        if late is not None:
            late.wait(30)
        return status, out, headers

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        now = self.clock.now()
        book = self.book
        parts = path.rstrip("/").split("/")[2:]  # after "/v2"
        head = parts[0] if parts else ""
        if head == "orders" and len(parts) == 1:
            if method == "POST":
                if not isinstance(body, dict):
                    raise ApiError(400, 40010000, "request body format is invalid")
                order, events = book.submit(body, now)
                self._publish(events)
                return 200, order.to_json()
            if method == "GET":
                return 200, [o.to_json() for o in self._list(query)]
            if method == "DELETE":
                done = book.cancel_all(now)
                for _, events in done:
                    self._publish(events)
                return 207, [{"id": o.id, "status": 200, "body": o.to_json()} for o, _ in done]
        if head == "orders:by_client_order_id" and method == "GET":
            return 200, book.order_by_client_id(query.get("client_order_id", "")).to_json()
        if head == "orders" and len(parts) == 2:
            if method == "GET":
                return 200, book.order(parts[1]).to_json()
            if method == "DELETE":
                self._publish(book.cancel(parts[1], now))
                return 204, None
            if method == "PATCH":
                new, events = book.replace(parts[1], body if isinstance(body, dict) else {}, now)
                self._publish(events)
                return 200, new.to_json()
        if head == "account" and len(parts) == 1 and method == "GET":
            return 200, book.account_json()
        if head == "account" and parts[1:2] == ["activities"] and method == "GET":
            return 200, self._activities(parts[2:], query)
        if head == "positions":
            return self._positions(method, parts[1:], query, now)
        if head == "assets" and len(parts) == 2 and method == "GET":
            return 200, book.asset(unquote(parts[1]).upper()).to_json()
        if head == "clock" and method == "GET":
            return 200, self._clock(now)
        raise ApiError(404, 40410000, "endpoint not found")

    def _list(self, query: dict[str, str]) -> list[Order]:
        """GET /v2/orders: status open|closed|all (default open), limit 1..500 (50),
        after/until on submission time, direction desc|asc, symbols."""
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise unprocessable(f"invalid status: {status!r}")
        raw_limit = query.get("limit", str(DEFAULT_LIST))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST:
            raise unprocessable(f"invalid limit: {raw_limit!r} (1 to {MAX_LIST})")
        direction, after, until = _window(query)
        symbols = set(filter(None, query.get("symbols", "").split(",")))
        rows = [
            o
            for o in self.book.orders.values()
            if (status == "all" or o.is_open == (status == "open"))
            and (not symbols or o.asset.symbol in symbols)
            and (after is None or o.submitted_at > after)
            and (until is None or o.submitted_at < until)
        ]
        rows.sort(key=lambda o: o.submitted_at, reverse=direction == "desc")
        return rows[: int(raw_limit)]

    def _activities(self, rest: list[str], query: dict[str, str]) -> list[dict[str, Any]]:
        """GET /v2/account/activities[/{type}]: ``activity_types`` (not with a type in the
        path), ``after``/``until`` on ``transaction_time``, ``direction`` desc|asc (desc),
        ``page_size`` 1..100 (100), ``page_token`` an activity id (desc: the page ends
        before it; asc: it begins right after it), ``order_id``. Only FILLs are recorded."""
        if rest and query.get("activity_types"):
            raise unprocessable("activity_types cannot be given with an activity type in the path")
        kinds = rest[:1] or list(filter(None, query.get("activity_types", "").split(",")))
        for kind in kinds:
            if kind not in ACTIVITY_TYPES:
                raise unprocessable(f"invalid activity type: {kind}")
        if query.get("date"):
            raise unprocessable("date is not supported by the local server; use after/until")
        size = query.get("page_size", str(MAX_ACTIVITY_PAGE))
        if not size.isdigit() or not 1 <= int(size) <= MAX_ACTIVITY_PAGE:
            raise unprocessable(f"invalid page_size: {size!r} (1 to {MAX_ACTIVITY_PAGE})")
        direction, after, until = _window(query)
        rows = [a for a in self.book.activities if not kinds or "FILL" in kinds]
        if direction == "desc":
            rows.reverse()
        token = query.get("page_token")
        if token:
            at = next((i for i, a in enumerate(rows) if a["id"] == token), None)
            if at is None:
                raise unprocessable(f"invalid page_token: {token!r}")
            rows = rows[at + 1 :]
        order_id = query.get("order_id")

        def keep(a: dict[str, Any]) -> bool:
            t = datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00"))
            return (
                (after is None or t > after)
                and (until is None or t < until)
                and (not order_id or a["order_id"] == order_id)
            )

        return [a for a in rows if keep(a)][: int(size)]

    def _positions(
        self, method: str, rest: list[str], query: dict[str, str], now: datetime
    ) -> Reply:
        book = self.book
        if method == "GET":
            if rest:
                return 200, book.position_json(unquote(rest[0]).upper())
            return 200, [book.position_json(s) for s in sorted(book.positions)]
        if method != "DELETE":
            raise ApiError(405, 40510000, "method not allowed")
        if query.get("cancel_orders") == "true":
            for _, events in book.cancel_all(now):
                self._publish(events)
        symbols = [unquote(rest[0]).upper()] if rest else sorted(book.positions)
        answers = []
        for symbol in symbols:
            try:
                book.position_json(symbol)  # 404 when flat
                order = self._liquidate(symbol, now)
                answers.append((symbol, 200, order.to_json()))
            except ApiError as err:
                if rest:
                    raise
                answers.append((symbol, err.status, err.body()))
        if rest:
            return 200, answers[0][2]
        return 207, [{"symbol": s, "status": st, "body": b} for s, st, b in answers]

    def _liquidate(self, symbol: str, now: datetime) -> Order:
        qty = self.book.positions[symbol].qty
        side = "sell" if qty > 0 else "buy"
        order, events = self.book.submit(
            {"symbol": symbol, "qty": str(abs(qty)), "side": side, "type": "market",
             "time_in_force": "day"}, now)  # fmt: skip
        self._publish(events)
        return order

    def _clock(self, now: datetime) -> dict[str, Any]:
        cal = self.book.calendar
        today = cal.session_of(now)
        is_open = today is not None and today.open <= now < today.close
        ahead = today if today is not None and now < today.open else None
        ahead = ahead or cal.next_session(cal.local(now).date())
        assert ahead is not None
        close = today.close if is_open and today is not None else ahead.close
        return {"timestamp": stamp(now), "is_open": is_open, "next_open": stamp(ahead.open),
                "next_close": stamp(close)}  # fmt: skip

    async def _stream(self, ws: ServerConnection) -> None:
        listener = _Listener(ws)
        with self.lock:
            self._listeners.add(listener)
        writer = asyncio.create_task(self._write(listener))
        try:
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                    action, data = msg.get("action"), msg.get("data") or {}
                except (ValueError, AttributeError):
                    await self._reply(listener, "error", {"error": "invalid message"})
                    continue
                if action in ("authenticate", "auth"):
                    ok = data.get("key_id") == self.key and data.get("secret_key") == self.secret
                    listener.authorized = ok
                    status = "authorized" if ok else "unauthorized"
                    await self._reply(
                        listener, "authorization", {"status": status, "action": action}
                    )
                    if not ok:
                        listener.queue.put_nowait(None)
                        await writer
                        return
                elif not listener.authorized:
                    await self._reply(
                        listener, "authorization", {"status": "unauthorized", "action": action}
                    )
                elif action == "listen":
                    streams = [s for s in data.get("streams") or [] if s == "trade_updates"]
                    with self.lock:
                        listener.listening = bool(streams)
                        self.lock.notify_all()
                    await self._reply(listener, "listening", {"streams": streams})
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            with self.lock:
                self._listeners.discard(listener)

    async def _reply(self, listener: _Listener, stream: str, data: dict[str, Any]) -> None:
        listener.queue.put_nowait(json.dumps({"stream": stream, "data": data}).encode())

    @staticmethod
    async def _write(listener: _Listener) -> None:
        with contextlib.suppress(ConnectionClosed):
            while (frame := await listener.queue.get()) is not None:
                await listener.ws.send(frame)
            await listener.ws.close(1008, "unauthorized")


def _window(query: dict[str, str]) -> tuple[str, datetime | None, datetime | None]:
    """``direction`` (asc|desc, default desc), ``after`` and ``until`` of a list request."""
    direction = query.get("direction", "desc")
    if direction not in ("asc", "desc"):
        raise unprocessable(f"invalid direction: {direction!r}")
    try:
        after, until = (
            datetime.fromisoformat(query[k].replace("Z", "+00:00")) if query.get(k) else None
            for k in ("after", "until")
        )
    except ValueError:
        raise unprocessable("invalid after or until") from None
    return direction, after, until


def _handler(server: FakeAlpacaTrading) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

        def _any(self) -> None:
            if server._stop.is_set():  # closed: a kept-alive connection dies, as a killed server's
                self.close_connection = True
                return
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = "invalid"
            authorized = (
                self.headers.get("APCA-API-KEY-ID") == server.key
                and self.headers.get("APCA-API-SECRET-KEY") == server.secret
            )
            status, out, headers = server.handle(self.command, url.path, query, body, authorized)
            if server._stop.is_set():  # closed while this request was held: no answer
                self.close_connection = True
                return
            data = b"" if out is None else json.dumps(out).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


__all__ = ["FakeAlpacaTrading"]
