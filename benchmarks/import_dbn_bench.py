"""Rows/s of reading and checking a Databento DBN ohlcv-1m file, beside a CSV of the same bars.

Writes, in a temporary directory, ``--symbols`` symbols x every regular minute of
``--sessions`` XNYS sessions (default 500 x 5, 975,000 bars) as a DBN file (metadata with
one mapping per symbol, records as databento-dbn's OHLCV layout) and as a CSV, then reads
each through the importer's reader (``iter_bar_file``: decoding, checks, session filter,
duplicates; no store), alternately, ``--rounds`` times in this process, and prints the
best time of each and their ratio (issue 22, item 2).

Usage: python benchmarks/import_dbn_bench.py [--symbols 500] [--sessions 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np


def bars(symbols: int, sessions: int) -> tuple[list[str], Any, Any, Any, date, date]:
    """(names, ts_ns, symbol index, prices in cents) of every regular minute, time-major."""
    from sessionflow.time_provider import ExchangeCalendar

    cal = ExchangeCalendar()
    days = list(cal.sessions(date(2024, 11, 4), date(2024, 12, 31)))[:sessions]
    opens = [
        int(info.open.timestamp()) * 10**9
        + np.arange(int((info.close - info.open).total_seconds()) // 60) * 60 * 10**9
        for info in days
    ]
    ts = np.repeat(np.concatenate(opens), symbols)
    which = np.tile(np.arange(symbols), len(ts) // symbols)
    cents = np.random.default_rng(22).integers(1_000, 50_000, len(ts))
    names = [f"S{i:03d}" for i in range(symbols)]
    return names, ts, which, cents, days[0].date, days[-1].date + timedelta(days=1)


def write_files(folder: Path, symbols: int, sessions: int) -> tuple[Path, Path, int]:
    import databento_dbn as dbn
    import pandas as pd

    from sessionflow.testing.dbn_files import Interval, Mapping, write_dbn

    names, ts, which, cents, first, end = bars(symbols, sessions)
    mappings = [Mapping(s, [Interval(first, end, str(100 + i))]) for i, s in enumerate(names)]
    rec = np.zeros(len(ts), dtype=np.dtype(dbn.OHLCVMsg._dtypes))
    rec["length"], rec["rtype"], rec["publisher_id"] = 14, 33, 2
    rec["instrument_id"], rec["ts_event"], rec["volume"] = which + 100, ts, 1000
    price = cents.astype(np.int64) * 10**7  # cents in units of 1e-9
    rec["open"], rec["close"] = price, price
    rec["high"], rec["low"] = price + 10**7, price - 10**7
    dbn_path = write_dbn(folder / "bars.dbn", rec.tobytes(), mappings, start_ns=int(ts[0]))
    csv_path = folder / "bars.csv"
    frame = pd.DataFrame({
        "symbol": np.array(names)[which],
        "timestamp": pd.to_datetime(ts, utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "open": cents / 100, "high": (cents + 1) / 100, "low": (cents - 1) / 100,
        "close": cents / 100, "volume": 1000,
    })  # fmt: skip
    frame.to_csv(csv_path, index=False)
    return dbn_path, csv_path, len(ts)


def read(path: Path, preset: str | None) -> tuple[int, float]:
    from sessionflow.importer import ImportReport, iter_bar_file
    from sessionflow.importer.layout import layout
    from sessionflow.time_provider import ExchangeCalendar

    report = ImportReport(str(path))
    start = time.perf_counter()
    chunks = iter_bar_file(path, ExchangeCalendar(), report, layout=layout(preset=preset))
    rows = sum(len(batch) for batch, _ in chunks)
    return rows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dbn_path, csv_path, n = write_files(Path(tmp), args.symbols, args.sessions)
        best = {"dbn": float("inf"), "csv": float("inf")}
        for _ in range(args.rounds):
            for name, path, preset in (("dbn", dbn_path, "databento"), ("csv", csv_path, None)):
                rows, seconds = read(path, preset)
                assert rows == n, (name, rows, n)
                best[name] = min(best[name], seconds)
    for name, seconds in best.items():
        print(f"{name}: {n:,} bars in {seconds:.2f} s, {n / seconds:,.0f} rows/s")
    print(f"DBN read {best['csv'] / best['dbn']:.1f}x faster than the CSV of the same bars")


if __name__ == "__main__":
    main()
