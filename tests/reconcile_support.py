"""Reconciliation harness: a trading server that can be stopped and restarted with its
state, live runs (AlpacaBroker + ExecutionManager + Portfolio) in this process, and a
run in a spawned child process the test can kill with SIGKILL.

Real SDK, real HTTP and websocket. The server's clock is a ManualClock the test moves.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

from sessionflow.execution_manager.alpaca_broker import AlpacaBroker
from sessionflow.execution_manager.manager import ExecutionManager
from sessionflow.portfolio import Portfolio
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_server import FakeAlpacaTrading
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.time_provider.live_clock import ManualClock
from tests.trading_support import KEY, SECRET, WAIT, bar, utc

BARS = [
    bar("AAPL", hhmm, 100.0 + i, 100.5 + i, 99.5 + i, 100.25 + i)
    for i, hhmm in enumerate(["14:36", "14:37", "14:38", "14:39", "14:40"])
]
CASH = 100_000


class Venue:
    """The local trading server, restartable on the same ports with the same book."""

    def __init__(self, book: TradingBook, start: str = "14:35:30") -> None:
        self.clock = ManualClock(utc(start))
        self.book = book
        self.server = FakeAlpacaTrading(self.clock, book, key=KEY, secret=SECRET, rate_limit=None)
        self.server.start()
        self.ports = (_port(self.server.stream_url), _port(self.server.url))
        self.down = False

    def at(self, hhmm: str) -> None:
        """Move the clock; the book follows (events go nowhere while the server is down)."""
        self.clock.set(utc(hhmm))
        if self.down:
            self.book.advance(self.clock.now())
        else:
            self.server.advance()

    def stop(self) -> None:
        self.server.close()
        self.down = True

    def restart(self) -> None:
        ws, rest = self.ports
        self.server = FakeAlpacaTrading(self.clock, self.book, key=KEY, secret=SECRET,
                                        rate_limit=None, ws_port=ws, rest_port=rest)  # fmt: skip
        self.server.start()
        self.down = False

    def close(self) -> None:
        if not self.down:
            self.server.close()


def _port(url: str) -> int:
    return int(url.split("//")[1].split("/")[0].rsplit(":", 1)[1])


@contextmanager
def venue(**book: Any) -> Iterator[Venue]:
    v = Venue(TradingBook(calendar=ExchangeCalendar("XNYS"), **book))
    v.server.add_bars(BARS)
    try:
        yield v
    finally:
        v.close()


class Run:
    """One live run: the broker over the SDK, the backtest's manager and portfolio."""

    def __init__(self, rest_url: str, stream_url: str, run_id: str,
                 resume: Sequence[str] = (), timeout_s: float = 2.0) -> None:  # fmt: skip
        client = TradingClient(KEY, SECRET, url_override=rest_url)
        stream = TradingStream(KEY, SECRET, url_override=stream_url)
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = 0.05, 0.2
        self.broker = AlpacaBroker(client, stream, run_id, timeout_s=timeout_s, resume=resume)
        self.clock = ManualClock(utc("14:35:30"))
        self.portfolio = Portfolio(CASH)
        self.manager = ExecutionManager(
            self.broker, self.portfolio, ["AAPL"], self.clock, {"AAPL": 100.0}.get
        )
        self.broker.start()
        assert self.broker.wait_connections(1, WAIT)
        assert self.broker.settle(WAIT)

    def reconnected(self, times: int) -> None:
        """Wait until the stream has listened ``times`` times in all, then merge."""
        assert self.broker.wait_connections(times, WAIT), self.broker.connections
        assert self.broker.settle(WAIT)

    def stop(self) -> None:
        self.broker.stop()


@contextmanager
def run(v: Venue, run_id: str, resume: Sequence[str] = (), timeout_s: float = 2.0) -> Iterator[Run]:
    r = Run(v.server.url, v.server.stream_url, run_id, resume, timeout_s)
    try:
        yield r
    finally:
        r.stop()


def child_main(rest_url: str, stream_url: str, run_id: str, conn: Connection) -> None:
    """A run in its own process, driven over ``conn``: ("submit", qty, client id) answers
    the order's id once the submit returns; ("drain", status) answers the order's status
    once it has reached ``status`` (or the wait ran out). It only applies events when told."""
    r = Run(rest_url, stream_url, run_id)
    conn.send("ready")
    order = None
    while True:
        command = conn.recv()
        if command[0] == "submit":
            order = r.manager.submit("AAPL", "buy", command[1], client_order_id=command[2])
            conn.send(order.id)
        elif command[0] == "drain" and order is not None:
            r.broker.wait_received(command[2], WAIT)
            r.broker.settle(WAIT)
            conn.send(order.status.value)


def spawn_child(v: Venue, run_id: str) -> tuple[multiprocessing.process.BaseProcess, Connection]:
    """``child_main`` in a spawned (never forked: this process runs threads) process."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=child_main, args=(v.server.url, v.server.stream_url, run_id, child), daemon=True
    )
    proc.start()
    assert parent.poll(60), "the child run did not start"
    assert parent.recv() == "ready"
    return proc, parent
