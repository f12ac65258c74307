"""A backtest's run time with N WebSocket viewers connected to the dashboard (issue 20, item 14).

The dashboard (``create_app`` + uvicorn, as ``serve`` runs it) serves a store of
``--symbols`` synthetic symbols over the demo's 11 sessions; a backtest of all of them
runs at full speed while ``--viewers``
WebSocket clients, in a separate process (their CPU is not the server's), stay connected
and read everything they are sent, as open browser tabs do. Reported: the run's wall time
(``start()`` to the end of the last session) and the server process's CPU time over it
(all its threads: engine and event loop; less sensitive to other processes' load), the
best of ``--runs`` for each count, counts alternated so the machine's load hits both
alike, and the ratios to the first count (best against best, and the median of each
round's ratio, which a busy machine disturbs less).

Usage: ``python benchmarks/ws_viewers.py [--viewers 0,100] [--runs 7] [--symbols 200] [--idle]``
(``--idle``: the clients never read, like a frozen tab).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from sessionflow import build_system
from sessionflow.demo import DEMO_END, DEMO_START, synthetic_bars
from sessionflow.store import open_store
from sessionflow.system_manager import Settings
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.web import create_app
from sessionflow.web.server import uvicorn_config


async def _viewers(url: str, n: int, read: bool) -> None:
    """The child: ``n`` connections; prints READY once all are open, ends on stdin EOF."""
    from websockets.asyncio.client import connect

    async def one() -> None:
        async with connect(url, max_size=None, open_timeout=120) as ws:
            opened.append(1)
            if len(opened) == n:
                print("READY", flush=True)
            if read:
                async for _ in ws:
                    pass
            else:
                await asyncio.Event().wait()

    opened: list[int] = []
    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for t in tasks:
        t.cancel()


def _run_once(path: Path, symbols: list[str], viewers: int, read: bool) -> tuple[float, float]:
    store = open_store(path, read_only=True)
    settings = Settings.load(store_path=path, symbols=symbols, start=DEMO_START, end=DEMO_END,
                             speed=0)  # fmt: skip
    system = build_system(settings, store=store)
    app = create_app(system, store, settings=settings)
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_config=None))
    server.config.access_log = False
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    child = None
    if viewers:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", f"ws://127.0.0.1:{port}/ws/events",
             str(viewers), "read" if read else "idle"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
    t0, c0 = time.perf_counter(), time.process_time()
    system.start()
    system.wait()
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    system.stop()
    if child is not None:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(60)
    server.should_exit = True
    thread.join(30)
    store.close()
    return took, cpu


def _median_ratio(walls: list[float], base: list[float]) -> float:
    return statistics.median(w / b for w, b in zip(walls, base, strict=True))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(_viewers(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "read"))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viewers", default="0,100")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--idle", action="store_true")
    args = ap.parse_args()
    counts = [int(x) for x in args.viewers.split(",")]
    best = dict.fromkeys(counts, float("inf"))
    cpu = dict.fromkeys(counts, float("inf"))
    walls: dict[int, list[float]] = {n: [] for n in counts}
    symbols = [f"S{i:03d}" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        store = open_store(path)
        store.upsert_bars(synthetic_bars(ExchangeCalendar(), symbols, DEMO_START, DEMO_END))
        store.close()
        for r in range(args.runs):
            for n in counts:
                took, used = _run_once(path, symbols, n, not args.idle)
                best[n], cpu[n] = min(best[n], took), min(cpu[n], used)
                walls[n].append(took)
                print(f"run {r + 1}: {n} viewers {took:.3f} s wall, {used:.3f} s CPU",
                      file=sys.stderr, flush=True)  # fmt: skip
    load = os.getloadavg()[0]
    base = walls[counts[0]]
    for n in counts:
        kind = "idle" if args.idle else "reading"
        print(f"{n:4d} viewers ({kind}), {args.symbols} symbols x 11 sessions: "
              f"{best[n]:.3f} s wall ({best[n] / best[counts[0]]:.2f}x), {cpu[n]:.3f} s "
              f"server CPU ({cpu[n] / cpu[counts[0]]:.2f}x), best of {args.runs}; median of "
              f"the rounds' wall ratios {_median_ratio(walls[n], base):.2f}x")  # fmt: skip
    print(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
