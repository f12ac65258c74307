"""``sessionflow feed-server --trading``: the Trading API served offline on the replay clock.

A real process; alpaca-py's TradingClient and TradingStream reach it with the URL and
dummy keys it printed. Orders fill on the replayed stored bars, and a day order
expires at the session's real (early) close.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

from sessionflow.store import DuckDBStore
from sessionflow.testing.feed_replay import LOCAL_KEY, LOCAL_SECRET
from sessionflow.time_provider import ExchangeCalendar
from tests.test_feed_server import CLI, WAIT, Lines, _env


def test_feed_server_trading_fills_on_the_replayed_bars(demo_store_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", CLI, "feed-server", "--store", str(demo_store_path),
         "--symbols", "AAPL", "--session", "2024-11-29", "--from", "12:57", "--speed", "30",
         "--trading", "--cash", "50000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    updates: queue.Queue[TradeUpdate] = queue.Queue()
    stream: TradingStream | None = None
    try:
        lines = Lines(server)
        urls = lines.until(r"trading REST (\S+)  stream (\S+) \(cash 50,000.00\)")
        client = TradingClient(LOCAL_KEY, LOCAL_SECRET, url_override=urls[1])
        assert client.get_account().cash == "50000"
        stream = TradingStream(LOCAL_KEY, LOCAL_SECRET, url_override=urls[2])

        async def on_update(update: TradeUpdate) -> None:
            updates.put(update)

        stream.subscribe_trade_updates(on_update)
        threading.Thread(target=stream.run, daemon=True).start()
        lines.until("client subscribed: streaming")  # listening started the replay clock
        order = client.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                               time_in_force=TimeInForce.DAY))  # fmt: skip
        resting = client.submit_order(
            LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, limit_price=1.0,
                              time_in_force=TimeInForce.DAY))  # fmt: skip
        seen: dict[tuple[str, str], TradeUpdate] = {}
        while ("expired", str(resting.id)) not in seen:
            update = updates.get(timeout=WAIT)
            seen[(update.event, str(update.order.id))] = update
    finally:
        if stream is not None and stream._loop is not None:
            asyncio.run_coroutine_threadsafe(stream.stop_ws(), stream._loop).result(WAIT)
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=WAIT)
    assert server.returncode == 0, err
    assert "Traceback" not in err

    fill = seen[("fill", str(order.id))]
    info = ExchangeCalendar().session(datetime(2024, 11, 29).date())
    src = DuckDBStore(demo_store_path, read_only=True)
    try:
        bars = list(src.load_bars(["AAPL"], info.open, info.close).iter_bars())
    finally:
        src.close()
    first = next(b for b in bars if b.ts >= order.submitted_at)  # no look-ahead
    assert (fill.timestamp, fill.price, fill.qty) == (first.ts, first.open, 1)
    expired = seen[("expired", str(resting.id))]
    assert expired.timestamp == info.close == datetime(2024, 11, 29, 18, tzinfo=UTC)
