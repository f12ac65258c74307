"""Per-bar against columnar delivery with no-op consumers, alternated in one process.

Issue 23, item 2's goal: the per-bar replay (``on_event``) with a no-op consumer within
2x of the columnar replay (``on_batch``) with a no-op consumer at 500 symbols. In
compare.py the two rows run in separate children, minutes apart, under whatever load
the machine had then; here they alternate in one process (each round runs both, the
order swapped every round), on compare.py's job (``peers.engine_sessionflow``,
``noop=True``), and the ratio of each round is shown with the load. Beside wall time,
the replay's process CPU time (every thread's): on a shared machine a run that waited
for a core is slower by the wall clock but not by CPU time, so that ratio moves less.

    python benchmarks/noop_delivery.py [--symbols 500] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    opts = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from peers import engine_sessionflow
    from peers.job import Job, ensure_data, preload_libraries

    preload_libraries()
    job = Job(opts.symbols, opts.sessions)
    data = ensure_data(job, HERE / ".data")
    ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
    best = {False: float("inf"), True: float("inf")}
    print(
        "| round | load | per-bar s | columnar s | per-bar / columnar "
        "| ns per delivered bar | CPU s | CPU ratio |"
    )
    print("|---:|---:|---:|---:|---:|---|---|---:|")
    for r in range(opts.rounds):
        took = {}
        load = os.getloadavg()[0]
        for batch in (False, True) if r % 2 == 0 else (True, False):
            res = engine_sessionflow.run(data, job, batch=batch, noop=True)
            n = res.bars_1m + sum(res.derived.values())
            took[batch] = (res.replay_s, res.extra["replay_cpu_s"], n)
            best[batch] = min(best[batch], res.replay_s)
        (per_bar, per_bar_cpu, n), (columnar, columnar_cpu, _) = took[False], took[True]
        ratios["wall"].append(per_bar / columnar)
        ratios["cpu"].append(per_bar_cpu / columnar_cpu)
        print(
            f"| {r + 1} | {load:.1f} | {per_bar:.3f} | {columnar:.3f} | {ratios['wall'][-1]:.2f}x "
            f"| {per_bar * 1e9 / n:.0f} / {columnar * 1e9 / n:.0f} "
            f"| {per_bar_cpu:.3f} / {columnar_cpu:.3f} | {ratios['cpu'][-1]:.2f}x |"
        )
    rounds = len(ratios["wall"])
    print(
        f"median per-bar / columnar: {statistics.median(ratios['wall']):.2f}x wall, "
        f"{statistics.median(ratios['cpu']):.2f}x CPU over {rounds} rounds; "
        f"best against best {best[False] / best[True]:.2f}x wall"
    )


if __name__ == "__main__":
    main()
