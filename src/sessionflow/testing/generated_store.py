"""A large store made by DuckDB itself: every regular minute of every session, n symbols.

For reads bigger than memory (benchmarks/read_bench.py: one year of 500 symbols,
about 49M bars) and the memory test of ``iter_bars``: one ``INSERT ... SELECT`` over
the calendar's sessions, so making 49M rows takes DuckDB seconds and no Python per
row. Values are a deterministic function of (symbol, session, minute) and valid
bars (low <= open, close <= high, volume > 0); symbols are ``S000``, ``S001`` ...
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from sessionflow.store.duckdb_store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar

_INSERT = """
INSERT INTO bars_1m (symbol, ts, open, high, low, close, volume, regular)
SELECT 'S' || lpad(i::VARCHAR, 3, '0'), open + to_minutes(m),
       p, greatest(p, q) + 0.05, least(p, q) - 0.05, q,
       100 + (i * 7919 + m * 104729 + day) % 10000, TRUE
FROM (SELECT s.open, s.day, i, m, 100 + i + ((m * 31 + s.day * 17 + i) % 200) / 100.0 AS p,
             100 + i + ((m * 37 + s.day * 13 + i) % 200) / 100.0 AS q
      FROM generated_sessions s, range($symbols) t(i), range(s.minutes) u(m))
"""


def symbol_names(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


def generate_store(
    path: Path, symbols: int, start: date, end: date, calendar: ExchangeCalendar
) -> int:
    """Write ``symbols`` symbols' bars for every session ``start``..``end`` into a new
    store at ``path``; returns the rows written."""
    sessions = calendar.sessions(start, end)
    table = pa.table(
        {
            "open": pa.array([s.open for s in sessions], type=pa.timestamp("us", tz="UTC")),
            "minutes": pa.array([s.minutes for s in sessions], type=pa.int64()),
            "day": pa.array([s.date.toordinal() for s in sessions], type=pa.int64()),
        }
    )
    store = DuckDBStore(path, origin="demo")
    try:
        with store.transaction() as cur:
            cur.register("generated_sessions", table)
            cur.execute(_INSERT, {"symbols": symbols})
        return store.count_bars()
    finally:
        store.close()
