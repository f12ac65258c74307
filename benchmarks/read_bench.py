"""Reading a year of 500 symbols (about 49M bars) by session: rows/s and peak memory.

Generates the store with DuckDB itself (``testing.generated_store``; not committed,
in a temp dir unless ``--store`` names one to keep), then runs each reader in a fresh
process, so each peak RSS (``ru_maxrss``) is that reader's alone:

- ``iter_bars``: ``sessionflow.iter_bars`` at 1m, pandas frames, one session at a time;
- ``iter_bars_polars``: the same into polars;
- ``duckdb``: DuckDB's own scan of the same table into Arrow record batches (the
  floor: no sessions, no grid, no frame);
- ``export``: ``sessionflow export bars`` to Parquet, the command run in the process
  (streams by session too).

Readers alternate over ``--rounds`` so load on a shared machine hits all alike; the
best and median rows/s are reported with the load average.

Usage: python benchmarks/read_bench.py [--symbols 500] [--start 2024-01-02]
       [--end 2024-12-31] [--rounds 1] [--readers iter_bars,duckdb] [--store PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

READERS = ("iter_bars", "iter_bars_polars", "duckdb", "export")


def read(reader: str, store: Path, start: str, end: str) -> dict[str, Any]:
    """One reader over the whole range, in this process; rows, seconds and peak RSS."""
    import duckdb
    import pyarrow.parquet as pq

    from sessionflow import iter_bars
    from sessionflow.cli.app import app

    t0 = time.perf_counter()
    rows = 0
    if reader.startswith("iter_bars"):
        backend = "polars" if reader.endswith("polars") else "pandas"
        for frame in iter_bars(store, None, start, end, "1m", backend=backend):
            rows += len(frame)
    elif reader == "duckdb":
        con = duckdb.connect(str(store), read_only=True)
        cur = con.execute(
            "SELECT symbol, ts, open, high, low, close, volume FROM bars_1m WHERE regular"
        )
        for batch in cur.to_arrow_reader(1 << 20):
            rows += batch.num_rows
        con.close()
    elif reader == "export":  # the command itself, in this process
        out = store.with_suffix(".export.parquet")
        args = ["export", "bars", "--store", str(store), "--start", start, "--end", end]
        try:
            app([*args, "--output", str(out), "--force", "--json"], standalone_mode=False)
            rows = pq.ParquetFile(out).metadata.num_rows
        finally:
            out.unlink(missing_ok=True)
    else:
        raise SystemExit(f"unknown reader {reader!r}: use one of {', '.join(READERS)}")
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"reader": reader, "rows": rows, "seconds": seconds, "peak_mb": peak_kb / 1024}


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--symbols", type=int, default=500)
    p.add_argument("--start", default="2024-01-02")
    p.add_argument("--end", default="2024-12-31")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--readers", default="iter_bars,duckdb")
    p.add_argument("--store", type=Path, help="keep the generated store here (reused if present)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--read", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.generate is not None:  # child: make the store
        from sessionflow.testing.generated_store import generate_store
        from sessionflow.time_provider import ExchangeCalendar

        t0 = time.perf_counter()
        rows = generate_store(
            a.generate, a.symbols, date.fromisoformat(a.start), date.fromisoformat(a.end),
            ExchangeCalendar(),
        )  # fmt: skip
        print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0}))
        return
    if a.read is not None:  # child: one reader
        print(json.dumps(read(a.read, a.store, a.start, a.end)))
        return
    with tempfile.TemporaryDirectory(prefix="read_bench_") as tmp:
        store = a.store or Path(tmp) / "year.duckdb"
        span = ["--start", a.start, "--end", a.end]
        made = None
        if not store.exists():
            made = _child(["--generate", str(store), "--symbols", str(a.symbols), *span])
            print(f"generated {made['rows']} bars in {made['seconds']:.1f} s", file=sys.stderr)
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in range(a.rounds):
            for reader in a.readers.split(","):
                got = _child(["--read", reader, "--store", str(store), *span])
                runs.setdefault(reader, []).append(got)
                print(
                    f"round {r + 1} {reader}: {got['rows']} rows, {got['seconds']:.1f} s, "
                    f"peak {got['peak_mb']:.0f} MB, load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                )
        size_mb = store.stat().st_size / 2**20
    summary = {
        "store_mb": round(size_mb),
        "generated": made,
        "load": [round(x, 1) for x in os.getloadavg()],
        "readers": {
            name: {
                "rows": got[0]["rows"],
                "best_rows_per_s": round(max(g["rows"] / g["seconds"] for g in got)),
                "median_rows_per_s": round(
                    statistics.median(g["rows"] / g["seconds"] for g in got)
                ),
                "peak_mb": round(max(g["peak_mb"] for g in got)),
            }
            for name, got in runs.items()
        },
    }
    if a.json:
        print(json.dumps(summary, indent=2))
        return
    for name, s in summary["readers"].items():
        print(f"{name:18} {s['rows']:>10} rows  {s['best_rows_per_s']:>12,} rows/s best  "
              f"{s['median_rows_per_s']:>12,} median  peak {s['peak_mb']} MB")  # fmt: skip
    print(f"store {summary['store_mb']} MB, load {summary['load']}")


if __name__ == "__main__":
    main()
