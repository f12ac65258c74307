"""Rows per second of ``fetch alpaca`` from the local Alpaca data server.

Serves every regular-session minute of ``--symbols`` symbols (default 100) over
``--sessions`` XNYS sessions (default 20: 780,000 bars) from the local server
(``testing.alpaca_server.FakeAlpaca``, real HTTP on 127.0.0.1, pages of 10,000), and
downloads them into a fresh DuckDB store with the same code the command runs
(``fetch.fetch_alpaca``): requests, JSON, the importer's row checks and one
transaction per page. Then runs it again (every symbol-session already complete: no
request for bars) and reports both times.

The figure is end to end on one machine: the server's JSON encoding shares the process
and the cores with the client, so it is a floor for what the client side costs (the
process's CPU seconds are reported too: wall time on shared cores says little), not
Alpaca's speed
(Alpaca's rate limit, 200 requests a minute on the free plan, is 2 million bars a
minute at 10,000 a page).

Usage: python benchmarks/fetch_bench.py [--symbols 100] [--sessions 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def run(symbols: int, sessions: int) -> dict[str, Any]:
    from pydantic import SecretStr

    from sessionflow.feeds.alpaca_history import AlpacaHistory
    from sessionflow.feeds.credentials import AlpacaCredentials
    from sessionflow.fetch import fetch_alpaca
    from sessionflow.models import MINUTE, Bar
    from sessionflow.store import open_store
    from sessionflow.testing.alpaca_server import FakeAlpaca
    from sessionflow.time_provider import ExchangeCalendar

    cal = ExchangeCalendar()
    days = cal.sessions(date(2024, 1, 2), date(2024, 3, 29))[:sessions]
    names = [f"S{i:03d}" for i in range(symbols)]
    bars = [
        Bar(sym, s.open + i * MINUTE, 100.25, 101.5, 99.75, 100.5, 1000 + i)
        for s in days
        for sym in names
        for i in range(s.minutes)
    ]
    creds = AlpacaCredentials(SecretStr("bench-key"), SecretStr("bench-secret"))
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp, FakeAlpaca("bench-key", "bench-secret") as srv:
        srv.add_rest_bars(bars)
        with closing(open_store(Path(tmp) / "fetch.duckdb")) as store:
            client = AlpacaHistory(creds, srv.rest_url, "iex")
            t0, c0 = time.perf_counter(), time.process_time()
            first = fetch_alpaca(store, client, cal, names, days[0].date, days[-1].date, now)
            t1, c1 = time.perf_counter(), time.process_time()
            again = fetch_alpaca(store, client, cal, names, days[0].date, days[-1].date, now)
            t2 = time.perf_counter()
            stored = store.count_bars()
    assert first.new == stored == len(bars), (first.new, stored, len(bars))
    return {
        "symbols": symbols,
        "sessions": len(days),
        "bars": len(bars),
        "pages": first.pages,
        "seconds": round(t1 - t0, 2),
        "rows_per_s": round(len(bars) / (t1 - t0)),
        "cpu_seconds": round(c1 - c0, 2),  # client and server threads: one process
        "rows_per_cpu_s": round(len(bars) / (c1 - c0)),
        "rerun_seconds": round(t2 - t1, 2),
        "rerun_bar_pages": again.pages,
        "load_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = run(args.symbols, args.sessions)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"fetch alpaca (local server): {out['bars']:,} bars = {out['symbols']} symbols x "
            f"{out['sessions']} sessions in {out['pages']} pages: {out['seconds']} s, "
            f"{out['rows_per_s']:,} rows/s; CPU {out['cpu_seconds']} s (server included), "
            f"{out['rows_per_cpu_s']:,} rows per CPU second; rerun {out['rerun_seconds']} s "
            f"({out['rerun_bar_pages']} bar pages); load {out['load_1m']:.1f}"
        )


if __name__ == "__main__":
    main()
