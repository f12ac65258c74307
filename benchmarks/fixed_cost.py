"""sessionflow's fixed cost per session minute: the compare job with a no-op consumer.

Replays the compare job's data file (``benchmarks/.data``, made by ``compare.py``) from a
fresh DuckDB store with a consumer that does nothing, and reports the time spent inside
sessions (SessionStartEvent to SessionEndEvent, so store reads before the first session
are out) per session minute, the best of ``--runs``. At 10 symbols that is the engine's
per-step cost: the merge, the instant write, the minute's upkeep check and the events.
Also reported: the coordinator thread's own CPU time over the same spans
(``time.thread_time`` read in the consumer, which runs on that thread), which leaves out
waiting for the GIL, so it varies less with the machine's load.

Usage: ``python benchmarks/fixed_cost.py [--symbols 10] [--mode batch|event] [--runs 5]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers.job import INTERVALS, Job, ensure_data, read_columns, read_sessions  # noqa: E402

from sessionflow import Settings, build_system  # noqa: E402
from sessionflow.events import SessionEndEvent, SessionStartEvent  # noqa: E402
from sessionflow.store import BarBatch, DuckDBStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--mode", choices=("batch", "event"), default="batch")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    data = ensure_data(Job(args.symbols, 5), HERE / ".data")
    sessions = read_sessions(data)
    best = cpu_best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        c = read_columns(data)
        path = Path(tmp) / "fixed.duckdb"
        store = DuckDBStore(path)
        symbol = np.array(c.names, dtype=object)[c.code]
        store.upsert_bars(BarBatch(symbol, c.ts_us, c.open, c.high, c.low, c.close, c.volume))
        for _ in range(args.runs):
            settings = Settings.load(
                store_path=path,
                symbols=sorted(c.names),
                start=sessions[0].day,
                end=sessions[-1].day,
                derived_intervals=list(INTERVALS),
            )
            system = build_system(settings, store=store)
            spans: list[list[float]] = []

            def consume(ev: Any, spans: list[list[float]] = spans) -> None:
                if isinstance(ev, SessionStartEvent):
                    spans.append([time.perf_counter(), 0.0, time.thread_time(), 0.0])
                elif isinstance(ev, SessionEndEvent):
                    spans[-1][1], spans[-1][3] = time.perf_counter(), time.thread_time()

            (system.on_batch if args.mode == "batch" else system.on_event)(consume)
            system.run()
            best = min(best, sum(s[1] - s[0] for s in spans))
            cpu_best = min(cpu_best, sum(s[3] - s[2] for s in spans))
        store.close()
    minutes = sum(s.minutes for s in sessions)
    print(
        f"{args.mode}, {args.symbols} symbols: {best:.3f} s inside sessions (best of "
        f"{args.runs}), {best / minutes * 1e6:.0f} us per session minute; coordinator "
        f"thread CPU {cpu_best / minutes * 1e6:.0f} us per session minute"
    )


if __name__ == "__main__":
    main()
