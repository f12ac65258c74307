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


def one(symbols: int, sessions: int, per_bar: bool) -> dict[str, float]:
    from sessionflow import BarEvent, DerivedBarEvent, Event, Settings, build_system
    from sessionflow.demo import synthetic_bars
    from sessionflow.events import BarSliceEvent, BatchEvent, DerivedSliceEvent
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

        def consume_batch(ev: BatchEvent) -> None:
            if isinstance(ev, BarSliceEvent):
                counts["bars"] += len(ev.bars)
            elif isinstance(ev, DerivedSliceEvent):
                counts["derived"] += len(ev.bars)

        def consume(ev: Event) -> None:
            if isinstance(ev, BarEvent):
                counts["bars"] += 1
            elif isinstance(ev, DerivedBarEvent):
                counts["derived"] += 1

        system = build_system(settings, store=store)
        if per_bar:
            system.on_event(consume)
        else:
            system.on_batch(consume_batch)
        t1 = time.perf_counter()
        system.run()
        run_s = time.perf_counter() - t1
        sd = system.data_manager.session_data
        sd_bytes = sd.nbytes()
        with sd.lock:
            grids = [sd.grid, *sd.history.get(1, {}).values()]
            stored = sum(int(g.present.sum()) for g in grids if g is not None)
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
        "session_data_bytes_per_bar": round(sd_bytes / max(1, stored), 1),
        "consumer": "per-bar" if per_bar else "batch",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", default="5,100")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--consumer", choices=("batch", "per-bar", "both"), default="both")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--per-bar", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.child, args.sessions, args.per_bar)))
        return
    rows = []
    modes = ["batch", "per-bar"] if args.consumer == "both" else [args.consumer]
    for n in (int(x) for x in args.symbols.split(",")):
        for mode in modes:
            cmd = [sys.executable, __file__, "--child", str(n), "--sessions", str(args.sessions)]
            cmd += ["--per-bar"] if mode == "per-bar" else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    head = ("symbols", "sessions", "consumer", "1m bars", "bars/s", "run s", "peak MB", "B/bar")
    print("".join(f"{h:>10}" for h in head))
    for r in rows:
        cells = (r["symbols"], r["sessions"], r["consumer"], r["bars"], r["bars_per_s"])
        cells += (r["run_s"], r["peak_rss_mb"], r["session_data_bytes_per_bar"])
        print("".join(f"{c!s:>10}" for c in cells))


if __name__ == "__main__":
    main()
