"""Throughput of the whole backtest pipeline at speed=0, and peak memory.

Each size runs in its own process so peak RSS belongs to that size alone.
Usage: python benchmarks/pipeline.py [--symbols 5,100] [--sessions 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

START = date(2024, 11, 18)


def one(symbols: int, sessions: int) -> dict[str, float]:
    from sessionflow import BarEvent, DerivedBarEvent, Event, Settings, build_system
    from sessionflow.demo import synthetic_bars
    from sessionflow.store import DuckDBStore
    from sessionflow.time_provider import ExchangeCalendar

    cal = ExchangeCalendar()
    days = cal.sessions(START, date(2025, 3, 1))[:sessions]
    names = [f"S{i:04d}" for i in range(symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        store = DuckDBStore(path)
        t0 = time.perf_counter()
        batch = synthetic_bars(cal, names, days[0].date, days[-1].date, {n: 0.02 for n in names})
        store.upsert_bars(batch)
        load_s = time.perf_counter() - t0
        settings = Settings.load(
            store_path=path, symbols=names, start=days[0].date, end=days[-1].date
        )
        counts = {"bars": 0, "derived": 0}

        def consume(ev: Event) -> None:
            if isinstance(ev, BarEvent):
                counts["bars"] += 1
            elif isinstance(ev, DerivedBarEvent):
                counts["derived"] += 1

        system = build_system(settings, store=store)
        system.on_event(consume)
        t1 = time.perf_counter()
        system.run()
        run_s = time.perf_counter() - t1
        store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "symbols": symbols,
        "sessions": len(days),
        "bars": counts["bars"],
        "derived": counts["derived"],
        "load_s": round(load_s, 3),
        "run_s": round(run_s, 3),
        "bars_per_s": round(counts["bars"] / run_s),
        "peak_rss_mb": round(peak_mb, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", default="5,100")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.child, args.sessions)))
        return
    rows = []
    for n in (int(x) for x in args.symbols.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--sessions", str(args.sessions)],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'symbols':>8} {'sessions':>8} {'1m bars':>9} {'bars/s':>9} {'run s':>7} {'peak MB':>8}")
    for r in rows:
        print(
            f"{r['symbols']:>8} {r['sessions']:>8} {r['bars']:>9} {r['bars_per_s']:>9}"
            f" {r['run_s']:>7} {r['peak_rss_mb']:>8}"
        )


if __name__ == "__main__":
    main()
