"""Trading-server harness: the local server, alpaca-py's TradingClient and TradingStream.

Time is a ManualClock the test moves; ``Harness.at(hh:mm[:ss])`` sets it and lets the
server catch up. Stream events arrive in a queue the test waits on with a timeout.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeUpdate
from alpaca.trading.stream import TradingStream

from sessionflow.models import Bar
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_server import FakeAlpacaTrading
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.time_provider.live_clock import ManualClock

KEY, SECRET = "PKTRADE1234", "trade-secret-5678"
DAY = date(2024, 11, 29)  # early close: 13:00 ET = 18:00Z
OTHER_DAY = date(2024, 12, 2)
WAIT = 10.0


def utc(hhmm: str, day: date = DAY) -> datetime:
    return datetime.fromisoformat(f"{day.isoformat()}T{hhmm}+00:00")


def bar(symbol: str, hhmm: str, o: float, h: float, lo: float, c: float, v: int = 1000,
        day: date = DAY) -> Bar:  # fmt: skip
    return Bar(symbol, utc(hhmm, day), o, h, lo, c, v)


class Harness:
    def __init__(self, server: FakeAlpacaTrading, clock: ManualClock) -> None:
        self.server, self.clock = server, clock
        self.client = TradingClient(KEY, SECRET, url_override=server.url)
        self.updates: queue.Queue[TradeUpdate] = queue.Queue()
        self.stream: TradingStream | None = None
        self._thread: threading.Thread | None = None

    def at(self, hhmm: str, day: date = DAY) -> None:
        self.clock.set(utc(hhmm, day))
        self.server.advance()

    def listen(self) -> None:
        """Run alpaca-py's TradingStream on its own thread until the server hears it listen."""
        stream = TradingStream(KEY, SECRET, url_override=self.server.stream_url)

        async def on_update(update: TradeUpdate) -> None:
            self.updates.put(update)

        stream.subscribe_trade_updates(on_update)
        self.stream = stream
        self._thread = threading.Thread(target=stream.run, name="test-trading-stream", daemon=True)
        self._thread.start()
        assert self.server.wait_listeners(1, WAIT)

    def next_update(self) -> TradeUpdate:
        return self.updates.get(timeout=WAIT)

    def updates_until(self, event: str) -> list[TradeUpdate]:
        out = [self.next_update()]
        while out[-1].event != event:
            out.append(self.next_update())
        return out

    def close(self) -> None:
        stream = self.stream
        if stream is not None and stream._loop is not None:
            asyncio.run_coroutine_threadsafe(stream.stop_ws(), stream._loop).result(WAIT)
        if self._thread is not None:
            self._thread.join(WAIT)


@contextmanager
def trading(
    bars: list[Bar],
    start: str = "14:35",
    listen: bool = True,
    server_opts: dict[str, Any] | None = None,
    **book: Any,
) -> Iterator[Harness]:
    clock = ManualClock(utc(start))
    calendar = ExchangeCalendar("XNYS")
    server = FakeAlpacaTrading(
        clock, TradingBook(calendar=calendar, **book), key=KEY, secret=SECRET, **(server_opts or {})
    )
    server.add_bars(bars)
    with server:
        harness = Harness(server, clock)
        if listen:
            harness.listen()
        try:
            yield harness
        finally:
            harness.close()
