"""The export round: files written by ``export bars``, read back, against the store and the engine.

The check store is exported at 1m, 5m and 15m as CSV and as Parquet with the
functions the command uses (``export_chunks`` into ``write_bars``). Each file is read
back with the csv module or pyarrow, not with sessionflow, and compared value for
value: 1m rows with the store's regular-session bars (``load_bars``), k-minute rows
with the bars a backtest delivered (the clean run's :class:`RunDigest`), and the
``minutes`` column with the window length worked out from the calendar's close.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sessionflow.check.digest import RunDigest
from sessionflow.check.rounds import EngineRun, Findings, RoundResult, compare_rows, judged
from sessionflow.export import export_chunks, write_bars
from sessionflow.models import from_us, to_us
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import SessionInfo

INTERVALS = (1, 5, 15)
FORMATS = ("csv", "parquet")
MINUTE_US = 60_000_000
Row = tuple[float, float, float, float, int, int]  # OHLCV and minutes


def _key(symbol: str, ts_us: int) -> tuple[str, str]:
    return symbol, f"{from_us(ts_us):%Y-%m-%d %H:%MZ}"


def read_back(path: Path, fmt: str) -> dict[tuple[str, str], Row]:
    """An exported file as rows keyed by (symbol, bar open), read without sessionflow."""
    records: list[dict[str, Any]]
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
        stamp = [datetime.fromisoformat(r["timestamp"]) for r in records]
    else:
        records = pq.read_table(path).to_pylist()
        stamp = [r["timestamp"] for r in records]
    out: dict[tuple[str, str], Row] = {}
    for r, ts in zip(records, stamp, strict=True):
        row = (float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]),
               int(r["volume"]), int(r["minutes"]))  # fmt: skip
        out[_key(str(r["symbol"]), to_us(ts))] = row
    return out


def _stored(
    store: DuckDBStore, symbols: Sequence[str], sessions: Sequence[SessionInfo]
) -> dict[tuple[str, str], Row]:
    out: dict[tuple[str, str], Row] = {}
    for s in sessions:
        b = store.load_bars(symbols, s.open, s.close)
        for sym, ts, o, h, lo, c, v in zip(
            b.symbol.tolist(), b.ts_us.tolist(), b.open.tolist(), b.high.tolist(),
            b.low.tolist(), b.close.tolist(), b.volume.tolist(), strict=True,
        ):  # fmt: skip
            out[_key(sym, ts)] = (o, h, lo, c, v, 1)
    return out


def _delivered(
    reference: RunDigest, symbols: Sequence[str], sessions: Sequence[SessionInfo], k: int
) -> dict[tuple[str, str], Row]:
    """The engine's k-minute bars, with each window's minutes up to the session's close."""
    out: dict[tuple[str, str], Row] = {}
    for s in sessions:
        close_us = to_us(s.close)
        for sym in symbols:
            for ts, (o, h, lo, c, v) in reference.series.get((s.date, sym, k), {}).items():
                out[_key(sym, ts)] = (o, h, lo, c, v, min(k, (close_us - ts) // MINUTE_US))
    return out


def run_export_round(
    workdir: Path,
    store_path: Path,
    symbols: Sequence[str],
    sessions: Sequence[SessionInfo],
    reference: Callable[[], EngineRun],
) -> RoundResult:
    """``reference``: a clean backtest of ``symbols`` over ``sessions`` on the same store
    (called inside the round, so its failure fails the round)."""
    workdir.mkdir(parents=True, exist_ok=True)

    def body(found: Findings) -> None:
        delivered = reference().digest
        store = DuckDBStore(store_path, read_only=True)
        try:
            stored = _stored(store, symbols, sessions)
            for k in INTERVALS:
                want = stored if k == 1 else _delivered(delivered, symbols, sessions, k)
                if not want:
                    found.differ([f"{k}m: the reference holds no bars"])
                for fmt in FORMATS:
                    path = workdir / f"bars_{k}m.{fmt}"
                    write_bars(export_chunks(store, symbols, sessions, k), path, fmt)
                    versus = "the store's bars" if k == 1 else "the engine's derived bars"
                    found.differ(
                        compare_rows(f"export {fmt} {k}m vs {versus}", read_back(path, fmt), want)
                    )
                found.saw(f"{k}m: {len(want)} rows x {len(FORMATS)} files")
        finally:
            store.close()
        found.compared.insert(0, "CSV and Parquet read back vs the store (1m) and a backtest")

    return judged("export", body)
