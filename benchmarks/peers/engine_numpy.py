"""numpy: the whole job as array operations, the practical speed limit and the reference.

Load = read the Parquet file into arrays. Replay = one vectorised pass: session of each
bar, sort by (symbol, session, time), session volume/high/low by ``reduceat``, the
5m/8m/15m bars (OHLCV, aligned to the session open, short last window kept, empty
windows absent) by ``reduceat`` over window boundaries, and then what every other
engine's consumer computes inside its timer: per (symbol, session) and series the bar
counts and ``Row.add``'s checksum, vectorised (``peers.hashes``). The time before that
last part is kept as ``replay_arrays_s`` (the reference's replay until round 3 of issue
11, when it left the checksums out of its timer while every other engine's timer had
them). After the timer every bar goes through ``Row.add`` itself, which gives the
reference rows; the vectorised figures must equal them, or the run fails.

The reference's delivery times (``peers.job.TIMING``) are each bar's close: a 1m bar's
open + 1 minute, a derived bar's window end, cut at the session close (its
``minutes``); computed inside the timer like the checksums, and cross-checked against
``Row.deliver`` after it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from peers.hashes import bar_hashes, timing_hashes
from peers.job import (
    HASH_MASK,
    INTERVALS,
    MINUTE_US,
    EngineResult,
    Job,
    Row,
    Rows,
    figures_of,
    read_columns,
    timing_table,
)


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
    session_close = closes[sess[order]]
    for m in INTERVALS:
        window = k * (10_000 // m + 1) + minute // m
        w_starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
        w_ends = np.r_[w_starts[1:], len(window)] - 1
        w_ts = opens[sess[order]][w_starts] + (minute[w_starts] // m) * m * MINUTE_US
        built[m] = {  # the derived bars themselves, built in full
            "group": group_of_row[w_starts],
            "ts": w_ts,
            "minutes": np.minimum(m, (session_close[w_starts] - w_ts) // MINUTE_US),
            "open": open_1m[w_starts],
            "high": np.maximum.reduceat(high_1m, w_starts),
            "low": np.minimum.reduceat(low_1m, w_starts),
            "close": close_1m[w_ends],
            "volume": np.add.reduceat(vol_1m, w_starts),
        }
    arrays_s = time.perf_counter() - t1
    groups = len(starts)
    counts = {1: n_1m}
    sums = {1: _group_sums(starts, (ts, open_1m, high_1m, low_1m, close_1m, vol_1m))}
    ones = np.ones(len(ts), np.int64)
    at = {1: _group_sums(starts, (ts, ones, ts + MINUTE_US), timing_hashes)}
    for m, b in built.items():
        g_starts = np.flatnonzero(np.r_[True, b["group"][1:] != b["group"][:-1]])
        present = b["group"][g_starts]
        counts[m] = np.zeros(groups, np.int64)
        counts[m][present] = np.diff(np.r_[g_starts, len(b["group"])])
        sums[m] = np.zeros(groups, np.uint64)
        cols = (b["ts"], b["open"], b["high"], b["low"], b["close"], b["volume"])
        sums[m][present] = _group_sums(g_starts, cols)
        at[m] = np.zeros(groups, np.uint64)
        due = b["ts"] + b["minutes"] * MINUTE_US
        at[m][present] = _group_sums(g_starts, (b["ts"], b["minutes"], due), timing_hashes)
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
    lengths = [(1, group_of_row, ts, ones)] + [
        (m, b["group"], b["ts"], b["minutes"]) for m, b in built.items()
    ]
    for m, grp, starts_m, minutes_m in lengths:
        cols = (grp.tolist(), starts_m.tolist(), minutes_m.tolist())
        for g, t, n in zip(*cols, strict=True):
            by_group[g].deliver(m, t, n, t + n * MINUTE_US)
    for g, row in enumerate(by_group):  # Row.add's figures must match the vectorised ones
        want = (int(volume[g]), float(high[g]), float(low[g]))
        want_n = {m: int(counts[m][g]) for m in row.n}
        want_sums = {m: int(sums[m][g]) & HASH_MASK for m in row.sums}
        want_at = {m: int(at[m][g]) & HASH_MASK for m in row.at}
        mine = (row.volume, row.high, row.low, row.n, row.sums, row.at)
        if mine != (*want, want_n, want_sums, want_at):
            raise AssertionError(f"reference disagrees with itself for group {g}")
    return EngineResult(
        rows=rows,
        load_s=load_s,
        replay_s=replay_s,
        bars_1m=len(c),
        derived={m: len(b["open"]) for m, b in built.items()},
        extra={
            "note": "vectorised; no per-bar events",
            "replay_arrays_s": round(arrays_s, 3),
            "order_errors": 0,
        },
        timing=timing_table(rows),
        figures=figures_of(rows),
    )


CHUNK = 16_384  # rows hashed per pass: the temporaries stay in cache


def _group_sums(
    starts: np.ndarray, cols: tuple[np.ndarray, ...], hashes_of: Any = bar_hashes
) -> np.ndarray:
    """Sum (mod 2**64) of ``Row.add``'s bar hash (or ``hashes_of``'s) over each group of
    rows sorted by group (``starts``: each group's first row), as uint64."""
    n = len(cols[0])
    hashes = np.empty(n, np.uint64)
    for a in range(0, n, CHUNK):
        hashes[a : a + CHUNK] = hashes_of(*(x[a : a + CHUNK] for x in cols))
    return np.add.reduceat(hashes, starts) if n else np.zeros(0, np.uint64)
