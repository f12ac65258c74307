"""What the compare job's per-bar consumer costs on its own, without any engine.

``engine_sessionflow``'s ``on_event`` consumer (dispatch on the event type, the bar's
fields buffered per series, reduced at the session's end: ``_BufferedTally``) runs over
events built beforehand from synthetic slices, the end-of-session reduction included,
and the time per event is scaled to the job's event count. ``--row-add`` measures the
per-bar consumer of the ``sessionflow`` row (``_Tally``: ``to_us`` and ``Row.add``'s tuple
hash per bar, as the peers' consumers). That is the floor under any per-bar engine's
replay time in ``compare.py``. Unless ``--no-numpy``, numpy's replay of the compare job
(``engine_numpy`` on ``benchmarks/.data``, best of 3, run right after) is measured too and
the floor is printed as a multiple of it (whole replay, and arrays only).

Usage: ``python benchmarks/consumer_floor.py [--row-add] [--symbols 500] [--events 1193659]``
(1,193,659 = 1m + 5m + 8m + 15m bars of the 500-symbol, 5-session job).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers.engine_sessionflow import _BufferedTally, _Tally
from peers.job import MINUTE_US, Session

from sessionflow.events import (
    BarEvent,
    BarSliceEvent,
    BatchEvent,
    DerivedBarEvent,
    DerivedSliceEvent,
    SessionEndEvent,
    expand,
)
from sessionflow.models import from_us
from sessionflow.store import BarBatch

OPEN_US = 1_732_545_000_000_000  # 2024-11-25 14:30 UTC


def events(symbols: int, minutes: int) -> list[Any]:
    """Per-bar events of ``minutes`` instants of ``symbols`` bars, with 5m windows."""
    rng = np.random.default_rng(0)
    names = np.array([f"S{i:04d}" for i in range(symbols)], dtype=object)
    out: list[BatchEvent] = []
    for m in range(minutes):
        ts = OPEN_US + m * MINUTE_US
        o, h, lo, c = rng.random((4, symbols)) + 100
        vol = rng.integers(1, 10_000, symbols)
        bars = BarBatch(names, np.full(symbols, ts, dtype=np.int64), o, h, lo, c, vol)
        out.append(BarSliceEvent(bars, from_us(ts + MINUTE_US)))
        if m % 5 == 4:
            out.append(DerivedSliceEvent(bars, from_us(ts + MINUTE_US), 5, 5))
    return list(expand(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--events", type=int, default=1_193_659)
    ap.add_argument("--row-add", action="store_true", help="the per-bar Row.add consumer")
    ap.add_argument("--no-numpy", action="store_true", help="skip numpy's replay")
    args = ap.parse_args()
    per_bar = events(args.symbols, 200)
    day = date(2024, 11, 25)
    sessions = [Session(day, OPEN_US, OPEN_US + 390 * MINUTE_US)]
    names = [f"S{i:04d}" for i in range(args.symbols)]
    tally = _Tally(sessions) if args.row_add else _BufferedTally(sessions, names)
    tally.day, tally.label = day, day.isoformat()

    def consume(ev: Any) -> None:  # engine_sessionflow's consumer, minus session events
        if isinstance(ev, BarEvent):
            tally.bar(ev.bar)
        elif isinstance(ev, DerivedBarEvent):
            tally.derived_bar(ev.bar, ev.interval)

    t0 = time.perf_counter()
    for ev in per_bar:
        consume(ev)
    tally.session_event(SessionEndEvent(day, from_us(OPEN_US), None, False))  # type: ignore[arg-type]
    per_event = (time.perf_counter() - t0) / len(per_bar)
    floor = per_event * args.events
    print(
        f"consumer alone: {per_event * 1e9:.0f} ns per event; "
        f"x {args.events:,} events = {floor:.2f} s"
    )
    if not args.no_numpy:
        whole, arrays = numpy_replay(args.symbols)
        print(
            f"numpy replay of the {args.symbols}-symbol job: {whole:.3f} s "
            f"({arrays:.3f} s arrays only); the consumer alone is {floor / whole:.1f}x "
            f"({floor / arrays:.1f}x arrays only)"
        )


def numpy_replay(symbols: int) -> tuple[float, float]:
    """numpy's fastest replay of 3 on the compare job: (whole, arrays only) seconds."""
    from peers import engine_numpy
    from peers.job import Job, ensure_data

    job = Job(symbols, 5)
    data = ensure_data(job, Path(__file__).resolve().parent / ".data")
    runs = [engine_numpy.run(data, job) for _ in range(3)]
    return min(r.replay_s for r in runs), min(r.extra["replay_arrays_s"] for r in runs)


if __name__ == "__main__":
    main()
