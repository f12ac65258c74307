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

With ``--quotes`` it measures ``fetch alpaca --quotes --no-bars`` instead: NBBO
updates (``--per-minute`` in every regular minute of ``--symbols`` symbols over
``--sessions`` sessions) parsed, folded into one-minute quote bars and written page by
page; the figure is updates received per second.

Usage: python benchmarks/fetch_bench.py [--symbols 100] [--sessions 20] [--json]
       python benchmarks/fetch_bench.py --quotes [--symbols 10] [--sessions 2]
           [--per-minute 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


@contextmanager
def _fetching(load: Callable[[Any], None]) -> Iterator[tuple[Any, Any]]:
    """(a fresh store, a client of a local server holding what ``load`` adds to it)."""
    from pydantic import SecretStr

    from sessionflow.feeds.alpaca_history import AlpacaHistory
    from sessionflow.feeds.credentials import AlpacaCredentials
    from sessionflow.store import open_store
    from sessionflow.testing.alpaca_server import FakeAlpaca

    creds = AlpacaCredentials(SecretStr("bench-key"), SecretStr("bench-secret"))
    with tempfile.TemporaryDirectory() as tmp, FakeAlpaca("bench-key", "bench-secret") as srv:
        load(srv)
        with closing(open_store(Path(tmp) / "fetch.duckdb")) as store:
            yield store, AlpacaHistory(creds, srv.rest_url, "iex")


def run(symbols: int, sessions: int) -> dict[str, Any]:
    from sessionflow.fetch import fetch_alpaca
    from sessionflow.models import MINUTE, Bar
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
    now = datetime.now(UTC)
    with _fetching(lambda srv: srv.add_rest_bars(bars)) as (store, client):
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


def run_quotes(symbols: int, sessions: int, per_minute: int) -> dict[str, Any]:
    """``fetch alpaca --quotes --no-bars`` of ``per_minute`` updates in every minute."""
    from sessionflow.feeds.base import QuoteUpdate
    from sessionflow.fetch import fetch_alpaca
    from sessionflow.time_provider import ExchangeCalendar

    cal = ExchangeCalendar()
    days = cal.sessions(date(2024, 1, 2), date(2024, 3, 29))[:sessions]
    names = [f"S{i:03d}" for i in range(symbols)]
    step = 60_000_000 // per_minute
    updates = [
        QuoteUpdate(sym, s.open_us + i * step, 100.0 + (i % 7) / 100, 3, 100.05, 4)
        for s in days
        for sym in names
        for i in range(s.minutes * per_minute)
    ]
    now = datetime.now(UTC)
    with _fetching(lambda srv: srv.add_rest_quotes(updates)) as (store, client):
        t0, c0 = time.perf_counter(), time.process_time()
        got = fetch_alpaca(store, client, cal, names, days[0].date, days[-1].date, now,
                           quotes=True, bars=False)  # fmt: skip
        t1, c1 = time.perf_counter(), time.process_time()
    q = got.quotes
    assert q is not None and q.folded == len(updates), (q, len(updates))
    return {
        "symbols": symbols,
        "sessions": len(days),
        "updates": len(updates),
        "quote_bars": q.new,
        "pages": q.pages,
        "seconds": round(t1 - t0, 2),
        "updates_per_s": round(len(updates) / (t1 - t0)),
        "cpu_seconds": round(c1 - c0, 2),  # client and server threads: one process
        "updates_per_cpu_s": round(len(updates) / (c1 - c0)),
        "load_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=None)
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--quotes", action="store_true", help="quote updates instead of bars")
    parser.add_argument("--per-minute", type=int, default=20, help="quote updates a minute")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quotes:
        q = run_quotes(args.symbols or 10, args.sessions or 2, args.per_minute)
        print(json.dumps(q, indent=2) if args.json else (
            f"fetch alpaca --quotes (local server): {q['updates']:,} updates = "
            f"{q['symbols']} symbols x {q['sessions']} sessions into {q['quote_bars']:,} "
            f"quote bars in {q['pages']} pages: {q['seconds']} s, {q['updates_per_s']:,} "
            f"updates/s; CPU {q['cpu_seconds']} s (server included), "
            f"{q['updates_per_cpu_s']:,} updates per CPU second; load {q['load_1m']:.1f}"
        ))  # fmt: skip
        return
    out = run(args.symbols or 100, args.sessions or 20)
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
