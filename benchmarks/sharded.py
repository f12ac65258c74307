"""Sharded backtest throughput: one process, then Dask with 1 and 2 workers (docs/scale.md).

Builds a synthetic store once (default 500 symbols x 20 sessions, 2 % of minutes
missing, in /tmp/sessionflow-bench/) and replays it: single process, then on a local
cluster per worker count. Prints bars/s end to end (cluster start included), bars/s
per worker-second (the shards' own replay time: the figure a capacity plan scales),
the store's bytes per row and the load average before and after each run (the
machine may be shared). The merged sessions are checked equal to the single run.

With ``--postgres URL`` the same store is copied (``sessionflow store copy``) into that
database once and every run reads it from there instead.

Usage: python benchmarks/sharded.py [--symbols 500] [--sessions 20] [--workers 1,2]
       [--postgres postgresql://user@host:port/db] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

from sessionflow.time_provider import ExchangeCalendar

START = date(2024, 11, 18)
ROOT = Path("/tmp/sessionflow-bench")


def build_store(path: Path, cal: ExchangeCalendar, symbols: int, sessions: int) -> float:
    """Create the store unless it exists; returns seconds spent (0 when it existed)."""
    from sessionflow.demo import synthetic_bars
    from sessionflow.store import DuckDBStore

    if path.exists():
        return 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    days = cal.sessions(START, date(2026, 1, 1))[:sessions]
    names = [f"S{i:04d}" for i in range(symbols)]
    t0 = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    store = DuckDBStore(tmp)
    try:
        for day in days:  # one session at a time keeps memory flat
            gaps = {n: 0.02 for n in names}
            store.upsert_bars(synthetic_bars(cal, names, day.date, day.date, gaps))
    finally:
        store.close()
    tmp.rename(path)
    return time.perf_counter() - t0


def store_rows(name: Path | str) -> int:
    from sessionflow.store import open_store

    store = open_store(name, read_only=True)
    try:
        return store.count_bars()
    finally:
        store.close()


def copy_to_postgres(path: Path, url: str) -> float:
    """Copy the DuckDB store into ``url`` unless it already holds as many bars."""
    import subprocess
    import sys

    from sessionflow.store.errors import StoreMissing

    try:
        if store_rows(url) == store_rows(path):
            return 0.0
    except StoreMissing:  # a new database: no schema yet
        pass
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "sessionflow.cli.app", "store", "copy", str(path), url]
    subprocess.run([*cmd, "--on-conflict", "replace"], check=True)
    return time.perf_counter() - t0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def single(settings: Any) -> tuple[dict[str, Any], list[Any]]:
    from sessionflow.system_manager import build_system

    before = load()
    t0 = time.perf_counter()
    system = build_system(settings)
    system.run()
    seconds = time.perf_counter() - t0
    system.store.close()
    reports = system.data_manager.reports
    bars = sum(r.bars for rep in reports for r in rep.rows)
    row = {"run": "single process", "workers": 0, "bars": bars, "seconds": round(seconds, 2)}
    row |= {"bars_per_s": round(bars / seconds), "per_worker_bars_per_s": round(bars / seconds)}
    return row | {"load_before": before, "load_after": load()}, reports


def sharded(settings: Any, workers: int) -> tuple[dict[str, Any], list[Any]]:
    from sessionflow.sharding import (
        dask_client,
        merge_results,
        plan_shards,
        run_sharded,
        store_name,
    )
    from sessionflow.time_provider import ExchangeCalendar

    sessions = ExchangeCalendar(settings.calendar).sessions(settings.start, settings.end)
    shards = plan_shards(settings.symbols, sessions, workers)
    before = load()
    t0 = time.perf_counter()
    with dask_client(workers) as client:
        started = time.perf_counter() - t0
        results = run_sharded(client, settings, shards, store_name(settings.store_path))
    seconds = time.perf_counter() - t0
    merged = merge_results(results, settings.symbols)
    busy = sum(r.seconds for r in results)
    row = {
        "run": f"--workers {workers}",
        "workers": workers,
        "shards": len(shards),
        "bars": merged.bars,
        "seconds": round(seconds, 2),
        "cluster_start_s": round(started, 2),
        "bars_per_s": round(merged.bars / seconds),
        "per_worker_bars_per_s": round(merged.bars / busy),
    }
    return row | {"load_before": before, "load_after": load()}, merged.reports


def main() -> None:
    from sessionflow.system_manager import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--postgres", metavar="URL", help="read from this PostgreSQL database")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cal = ExchangeCalendar()
    path = ROOT / f"sharded-{args.symbols}x{args.sessions}.duckdb"
    built = build_store(path, cal, args.symbols, args.sessions)
    rows = store_rows(path)
    days = cal.sessions(START, date(2026, 1, 1))[: args.sessions]
    names = [f"S{i:04d}" for i in range(args.symbols)]
    source: Path | str = path
    copied = 0.0
    if args.postgres:
        copied = copy_to_postgres(path, args.postgres)
        source = args.postgres
    first_day, last_day = days[0].date, days[-1].date
    settings = Settings.load(store_path=source, symbols=names, start=first_day, end=last_day)
    out: dict[str, Any] = {
        "store": str(source),
        "copy_to_postgres_s": round(copied, 1),
        "store_rows": rows,
        "store_bytes": path.stat().st_size,
        "bytes_per_row": round(path.stat().st_size / rows, 1),
        "store_build_s": round(built, 1),
        "cpus": os.cpu_count(),
        "runs": [],
    }
    first, reference = single(settings)
    out["runs"].append(first)
    for n in (int(x) for x in args.workers.split(",")):
        row, reports = sharded(settings, n)
        row["equal_to_single"] = reports == reference
        out["runs"].append(row)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"store {source}: {rows:,} rows; DuckDB file {out['store_bytes']:,} bytes "
        f"({out['bytes_per_row']} bytes/row); {out['cpus']} CPUs"
    )
    for r in out["runs"]:
        extra = f", cluster start {r['cluster_start_s']}s" if "cluster_start_s" in r else ""
        same = "" if "equal_to_single" not in r else f", equal: {r['equal_to_single']}"
        print(
            f"{r['run']:>15}: {r['bars']:,} bars in {r['seconds']}s = {r['bars_per_s']:,} bars/s "
            f"(per worker-second {r['per_worker_bars_per_s']:,}{extra}{same}); "
            f"load {r['load_before']} -> {r['load_after']}"
        )


if __name__ == "__main__":
    main()
