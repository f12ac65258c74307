"""numpy: the whole job as array operations, the practical speed limit and the reference.

Load = read the Parquet file into arrays. Replay = one vectorised pass: session of each
bar, sort by (symbol, session, time), session volume/high/low by ``reduceat``, and
the 5m/15m bars (OHLCV, aligned to the session open, short last window kept, empty
windows absent) by ``reduceat`` over window boundaries. Nothing is event-driven, so
there is no consumer inside the timed replay: after the timer stops, every 1m bar and
every derived bar built is fed through the same ``Row.add`` the other engines' consumers
call, which gives the reference counts, session figures and checksums.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from peers.job import INTERVALS, MINUTE_US, EngineResult, Job, Row, Rows, read_columns


def run(data: Path, job: Job) -> EngineResult:
    t0 = time.perf_counter()
    c = read_columns(data)
    load_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    opens = np.array([s.open_us for s in c.sessions], dtype=np.int64)
    closes = np.array([s.close_us for s in c.sessions], dtype=np.int64)
    sess = np.searchsorted(opens, c.ts_us, side="right") - 1
    if (sess < 0).any() or (c.ts_us >= closes[sess]).any():
        raise ValueError("bars outside the job's sessions")
    key = c.code * len(c.sessions) + sess
    order = np.lexsort((c.ts_us, key))
    k, ts = key[order], c.ts_us[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    n_1m = np.diff(np.r_[starts, len(k)])
    volume = np.add.reduceat(c.volume[order], starts)
    high_1m, low_1m = c.high[order], c.low[order]
    high = np.maximum.reduceat(high_1m, starts)
    low = np.minimum.reduceat(low_1m, starts)
    group_of_row = np.repeat(np.arange(len(starts)), n_1m)
    minute = (ts - opens[sess[order]]) // MINUTE_US
    open_1m, close_1m, vol_1m = c.open[order], c.close[order], c.volume[order]
    built: dict[int, dict[str, np.ndarray]] = {}
    for m in INTERVALS:
        window = k * (10_000 // m + 1) + minute // m
        w_starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
        w_ends = np.r_[w_starts[1:], len(window)] - 1
        built[m] = {  # the derived bars themselves, built in full
            "group": group_of_row[w_starts],
            "ts": opens[sess[order]][w_starts] + (minute[w_starts] // m) * m * MINUTE_US,
            "open": open_1m[w_starts],
            "high": np.maximum.reduceat(high_1m, w_starts),
            "low": np.minimum.reduceat(low_1m, w_starts),
            "close": close_1m[w_ends],
            "volume": np.add.reduceat(vol_1m, w_starts),
        }
    replay_s = time.perf_counter() - t1

    labels = [s.day.isoformat() for s in c.sessions]
    by_group: list[Row] = []
    rows: Rows = {}
    for first in starts.tolist():
        sym, si = divmod(int(k[first]), len(c.sessions))
        row = rows[(c.names[sym], labels[si])] = Row()
        by_group.append(row)
    series = [(1, group_of_row, ts, open_1m, high_1m, low_1m, close_1m, vol_1m)] + [
        (m, b["group"], b["ts"], b["open"], b["high"], b["low"], b["close"], b["volume"])
        for m, b in built.items()
    ]
    for m, grp, *cols in series:
        for g, *bar in zip(grp.tolist(), *(x.tolist() for x in cols), strict=True):
            by_group[g].add(m, *bar)
    for g, row in enumerate(by_group):  # the consumer's figures must match reduceat's
        if (row.volume, row.high, row.low) != (int(volume[g]), float(high[g]), float(low[g])):
            raise AssertionError(f"reference disagrees with itself for group {g}")
    return EngineResult(
        rows=rows,
        load_s=load_s,
        replay_s=replay_s,
        bars_1m=len(c),
        derived={m: len(b["open"]) for m, b in built.items()},
        extra={"note": "vectorised; no per-bar events"},
    )
