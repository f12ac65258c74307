"""Order round trip on the local servers: a strategy's decision to its fill event.

One ExecutionManager over ``AlpacaBroker`` (alpaca-py's ``TradingClient`` and
``TradingStream``, real HTTP and websocket) against the local trading server, which
fills market orders on stored 1-minute bars with the backtest's fill model. Orders are
placed at a steady rate (default 100 a minute, as issue 24 asks), one market order at a
time, alternately buy and sell. For each order:

- t0: ``ExecutionManager.submit`` is called (the strategy's decision);
- the venue's clock moves to the end of the bar the order fills on and the server
  fills it (the wait for the next bar to close, up to a minute in a real session, is
  the market's, not the software's, and is left out);
- heard: the broker's stream has received the fill (``wait_received``);
- booked: the ExecutionManager has applied it (``drain``, what the coordinator does first
  at every instant; the portfolio holds the fill).

Prints p50/p90/p99/max of submit (the REST call), decision to heard, and decision to
booked, with the load average. Server, SDK and engine share one process and one GIL,
so these are upper bounds for the engine itself.

    python benchmarks/live_orders_latency.py [--orders 100] [--per-minute 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

from sessionflow.demo import synthetic_bars
from sessionflow.execution_manager.alpaca_broker import AlpacaBroker
from sessionflow.execution_manager.manager import ExecutionManager
from sessionflow.execution_manager.orders import OrderStatus
from sessionflow.models import MINUTE
from sessionflow.portfolio import Portfolio
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_server import FakeAlpacaTrading
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.time_provider.live_clock import ManualClock

KEY, SECRET = "bench-key", "bench-secret"
DAY = date(2024, 12, 2)
OPEN = datetime(2024, 12, 2, 14, 30, tzinfo=UTC)
WAIT_S = 10.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, ms: list[float]) -> dict[str, float | str]:
    return {
        "what": name,
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": round(_pct(ms, 0.9), 2),
        "p99_ms": round(_pct(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


def run(orders: int, per_minute: float) -> dict[str, object]:
    cal = ExchangeCalendar()
    bars = list(synthetic_bars(cal, ["AAA"], DAY, DAY, seed=3).iter_bars())
    if orders > len(bars) - 1:
        raise SystemExit(f"--orders {orders}: at most {len(bars) - 1} (one bar each)")
    clock = ManualClock(OPEN + timedelta(seconds=30))
    book = TradingBook(Decimal(10_000_000), calendar=cal)
    last = {"AAA": bars[0].open}
    with FakeAlpacaTrading(clock, book, key=KEY, secret=SECRET, rate_limit=None) as desk:
        desk.add_bars(bars)
        broker = AlpacaBroker(
            TradingClient(KEY, SECRET, url_override=desk.url),
            TradingStream(KEY, SECRET, url_override=desk.stream_url),
            "bench",
        )
        em = ExecutionManager(broker, Portfolio(10_000_000), ["AAA"], clock, last.get)
        broker.start()
        if not desk.wait_listeners(1, WAIT_S):
            raise SystemExit("the broker's stream did not listen")
        submit_ms: list[float] = []
        heard_ms: list[float] = []
        booked_ms: list[float] = []
        gap = 60.0 / per_minute
        pace = threading.Event()  # never set: waits pace the orders, they do not sleep
        t_next = time.perf_counter()
        try:
            for i in range(orders):
                pace.wait(max(0.0, t_next - time.perf_counter()))
                t_next += gap
                expected = broker.received + 2  # new, then fill
                t0 = time.perf_counter()
                order = em.submit("AAA", "buy" if i % 2 == 0 else "sell", 10)
                t1 = time.perf_counter()
                clock.set(OPEN + (i + 2) * MINUTE)  # the bar opening after the order closes
                desk.advance()
                if not broker.wait_received(expected, WAIT_S):
                    raise SystemExit(f"order {i}: the fill was not heard in {WAIT_S:g} s")
                t2 = time.perf_counter()
                broker.drain()
                t3 = time.perf_counter()
                if order.status is not OrderStatus.FILLED:
                    raise SystemExit(f"order {i}: {order.status.value}, not filled")
                last["AAA"] = bars[i + 1].close
                submit_ms.append((t1 - t0) * 1e3)
                heard_ms.append((t2 - t0) * 1e3)
                booked_ms.append((t3 - t0) * 1e3)
        finally:
            broker.stop(0.0)
            desk.drop_connections()
            broker.stop()
    return {
        "orders": orders,
        "per_minute": per_minute,
        "load_average": os.getloadavg(),
        "rows": [
            _row("submit (REST round trip)", submit_ms),
            _row("decision -> fill heard on the stream", heard_ms),
            _row("decision -> fill booked by the ExecutionManager", booked_ms),
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--per-minute", type=float, default=100.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = run(args.orders, args.per_minute)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['orders']} market orders at {out['per_minute']:g}/min, load {out['load_average']}")
    for row in out["rows"]:  # type: ignore[attr-defined]
        print(
            f"{row['what']:<48} p50 {row['p50_ms']:>7} ms  p90 {row['p90_ms']:>7} ms  "
            f"p99 {row['p99_ms']:>7} ms  max {row['max_ms']:>7} ms"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
