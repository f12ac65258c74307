"""Live bar-to-consumer latency: server send timestamp to the consumer callback.

A local Alpaca-protocol server (``sessionflow.testing.alpaca_server``) streams
``--bars-per-minute`` bars a minute, one symbol each, spread evenly over the
minute, one websocket frame per bar, for ``--minutes`` minutes of real time.
The real SDK receives them; the engine writes them to session_data (and the
store, in micro-batches) and calls a per-bar consumer (``on_event``). The
latency of each bar is ``perf_counter`` at the callback minus ``perf_counter``
just before the server's ``send``: the same clock, since all runs in one process.
Server, SDK and engine share one interpreter (and GIL), so this is an upper
bound for the engine's own part.

Usage: python benchmarks/live_latency.py [--minutes 1] [--bars-per-minute 5000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def run(minutes: int, per_minute: int, consumer: str) -> dict[str, Any]:
    from sessionflow import BarEvent, Event, Settings, build_system
    from sessionflow.data_manager.live import LiveParts
    from sessionflow.events import BarSliceEvent, BatchEvent
    from sessionflow.models import MINUTE, Bar, from_us, to_us
    from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg
    from sessionflow.time_provider import SessionInfo
    from sessionflow.time_provider.schedule import FixedSchedule

    symbols = [f"S{i:04d}" for i in range(per_minute)]
    now_us = to_us(datetime.now(UTC))
    # the session opened a minute ago: each minute's bars are sent once it is complete,
    # during the next minute, as Alpaca does (earlier they would be "from the future")
    open_ = from_us(now_us - now_us % 60_000_000) - MINUTE
    session = SessionInfo(open_.date(), open_, open_ + (minutes + 5) * MINUTE)
    sent: dict[tuple[str, int], int] = {}
    lat_ns: list[int] = []
    done = threading.Event()
    total = minutes * per_minute

    def on_event(ev: Event) -> None:
        if isinstance(ev, BarEvent):
            t = time.perf_counter_ns()
            lat_ns.append(t - sent[(ev.bar.symbol, to_us(ev.bar.ts))])
            if len(lat_ns) >= total:
                done.set()

    def on_batch(ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent):
            t = time.perf_counter_ns()
            for sym, ts in zip(ev.bars.symbol.tolist(), ev.bars.ts_us.tolist(), strict=True):
                lat_ns.append(t - sent[(sym, ts)])
            if len(lat_ns) >= total:
                done.set()

    with tempfile.TemporaryDirectory() as tmp, FakeAlpaca("bench", "bench-secret") as server:
        settings = Settings.load(
            mode="live",
            store_path=Path(tmp) / "live.duckdb",
            symbols=symbols,
            trailing_days=0,
            live={
                "feed_url": server.ws_url,
                "rest_url": server.rest_url,
                "key_id": "bench",
                "secret_key": "bench-secret",
                "bar_grace_seconds": 75,  # bars of minute m arrive during minute m+1
            },
        )
        system = build_system(settings, live=LiveParts(schedule=FixedSchedule([session])))
        if consumer == "per-bar":
            system.on_event(on_event)
        else:
            system.on_batch(on_batch)
        system.start()

        async def stream() -> None:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            step = 60.0 / per_minute
            for m in range(minutes):
                ts = open_ + m * MINUTE
                for i, sym in enumerate(symbols):
                    delay = t0 + m * 60.0 + i * step - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    msg = bar_msg(Bar(sym, ts, 100.0, 101.0, 99.0, 100.5, 100 + i))
                    sent[(sym, to_us(ts))] = time.perf_counter_ns()
                    await server.broadcast([msg])

        wall0 = time.perf_counter()
        asyncio.run_coroutine_threadsafe(stream(), server.loop).result()
        received = done.wait(30)
        wall = time.perf_counter() - wall0
        counters = dict(system.data_manager.coordinator.counters())  # type: ignore[union-attr]
        system.stop()
    ms = sorted(x / 1e6 for x in lat_ns)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "consumer": consumer,
        "bars_sent": total,
        "bars_received": len(ms),
        "all_received": received,
        "wall_s": round(wall, 1),
        "p50_ms": round(q[49], 3),
        "p90_ms": round(q[89], 3),
        "p99_ms": round(q[98], 3),
        "max_ms": round(ms[-1], 3),
        "store_batches": counters.get("store_batches", 0),
        "feed_max_backlog": counters.get("feed_max_backlog", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=1)
    ap.add_argument("--bars-per-minute", type=int, default=5000)
    ap.add_argument("--consumer", choices=("per-bar", "batch"), default="per-bar")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args.minutes, args.bars_per_minute, args.consumer)
    result["command"] = " ".join(["python", "benchmarks/live_latency.py", *sys.argv[1:]])
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"command: {result['command']}")
    print(
        f"{result['bars_received']}/{result['bars_sent']} bars in {result['wall_s']} s "
        f"({result['consumer']} consumer)"
    )
    print(
        f"latency ms: p50 {result['p50_ms']}  p90 {result['p90_ms']}  "
        f"p99 {result['p99_ms']}  max {result['max_ms']}"
    )
    print(f"store batches {result['store_batches']}, max backlog {result['feed_max_backlog']}")


if __name__ == "__main__":
    main()
