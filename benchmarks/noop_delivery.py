"""Per-bar against columnar delivery with no-op consumers, alternated in one process.

Issue 23, item 2's goal: the per-bar replay (``on_event``) with a no-op consumer within
2x of the columnar replay (``on_batch``) with a no-op consumer at 500 symbols. In
compare.py the two rows run in separate children, minutes apart, under whatever load
the machine had then; here they alternate in one process (each round runs both, the
order swapped every round), on compare.py's job (``peers.engine_sessionflow``,
``noop=True``), and the ratio of each round is shown with the load.

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
    ratios = []
    print("| round | load | per-bar s | columnar s | per-bar / columnar | ns per delivered bar |")
    print("|---:|---:|---:|---:|---:|---|")
    for r in range(opts.rounds):
        took = {}
        load = os.getloadavg()[0]
        for batch in (False, True) if r % 2 == 0 else (True, False):
            res = engine_sessionflow.run(data, job, batch=batch, noop=True)
            took[batch] = (res.replay_s, res.bars_1m + sum(res.derived.values()))
        (per_bar, n), (columnar, _) = took[False], took[True]
        ratios.append(per_bar / columnar)
        print(
            f"| {r + 1} | {load:.1f} | {per_bar:.3f} | {columnar:.3f} | {ratios[-1]:.2f}x "
            f"| {per_bar * 1e9 / n:.0f} / {columnar * 1e9 / n:.0f} |"
        )
    print(f"median per-bar / columnar: {statistics.median(ratios):.2f}x over {len(ratios)} rounds")


if __name__ == "__main__":
    main()
