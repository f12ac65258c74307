"""Reading one 500-symbol session from each store backend: rows/s, DuckDB next to PostgreSQL.

The upkeep thread prefetches the next session while the current one replays, so a
session read is hidden when it takes less than a session's replay (about 1.1 s per
bar, 0.65 s batched, at 500 symbols here: benchmarks/README.md). Writes the same
``synthetic_bars`` (500 symbols, 2024-11-25..11-27) into a DuckDB file and a
PostgreSQL database, then times ``load_bar_rows`` of the middle session, the call
prefetch makes (best of ``--repeat``), and the write of all rows (one upsert).

Usage: python benchmarks/store_read.py [--symbols 500] [--repeat 5] [--url postgresql://...]
Without ``--url`` a throwaway PostgreSQL server is started (tests/pg_support.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from sessionflow.demo import synthetic_bars
from sessionflow.store import BarBatch, open_store
from sessionflow.time_provider import ExchangeCalendar

DAYS = (date(2024, 11, 25), date(2024, 11, 27))


@contextlib.contextmanager
def server_url(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.pg_support import pg_server

    with pg_server() as server:
        yield server.new_db("bench")


def measure(name: str, batch: BarBatch, symbols: list[str], repeat: int) -> dict[str, object]:
    cal = ExchangeCalendar()
    session = cal.session(date(2024, 11, 26))
    store = open_store(name)
    try:
        t0 = time.perf_counter()
        store.upsert_bars(batch)
        write_s = time.perf_counter() - t0
        best, rows = float("inf"), 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            _, got = store.load_bar_rows(symbols, session.open, session.close)
            best = min(best, time.perf_counter() - t0)
            rows = len(got)
    finally:
        store.close()
    return {
        "rows_read": rows,
        "read_s": round(best, 4),
        "read_rows_per_s": round(rows / best),
        "rows_written": len(batch),
        "write_s": round(write_s, 3),
        "write_rows_per_s": round(len(batch) / write_s),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--url", help="an empty PostgreSQL database (default: a throwaway server)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    batch = synthetic_bars(ExchangeCalendar(), symbols, *DAYS)
    out: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["duckdb"] = measure(str(Path(tmp) / "bench.duckdb"), batch, symbols, args.repeat)
    with server_url(args.url) as url:
        out["postgresql"] = measure(url, batch, symbols, args.repeat)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"one session of {args.symbols} symbols, best of {args.repeat} reads")
    head = "backend | rows read | read s | rows/s read | rows written | write s | rows/s written"
    print(f"| {head} |")
    print("|---|---|---|---|---|---|---|")
    for name, r in out.items():
        print(f"| {name} | {r['rows_read']:,} | {r['read_s']} | {r['read_rows_per_s']:,} | "
              f"{r['rows_written']:,} | {r['write_s']} | {r['write_rows_per_s']:,} |")  # fmt: skip


if __name__ == "__main__":
    main()
