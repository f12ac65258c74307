"""Two checkouts' ``sessionflow import lean`` and DuckDB's floor, alternated on one data set.

While other jobs share the machine, one run of each is noise; alternating floor, before
and after in one process and keeping each one's best wall and CPU seconds (children's
user + system) gives a fair ratio.

Usage: python benchmarks/import_ab.py --rows 1000000 --reps 3 --before /work/main/.venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from import_bench import _CHILD, _FLOOR, write_csv, write_lean


def child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one child, and its stdout."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {done.stderr[-500:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--before", required=True, help="python of the other checkout's venv")
    args = parser.parse_args()
    pythons = {"before": args.before, "after": sys.executable}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_csv(d / "bars.csv", args.rows)
        write_lean(d / "bars.csv", d / "lean")
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.reps):
            runs = {"floor": [sys.executable, "-c", _FLOOR, str(d / "bars.csv"), str(d / "f.db")]}
            for name, python in pythons.items():
                runs[name] = [python, "-c", _CHILD, "import", "lean", str(d / "lean"),
                              "--store", str(d / f"{name}.db"), "--json"]  # fmt: skip
            for name, cmd in runs.items():
                wall, cpu, out = child(cmd)
                if name != "floor":
                    assert sum(r["new"] for r in json.loads(out)) > 0
                for db in d.glob("*.db"):
                    db.unlink()
                w, c = best.get(name, (wall, cpu))
                best[name] = (min(w, wall), min(c, cpu))
        floor_wall, floor_cpu = best["floor"]
        result = {"rows": args.rows, "load_1m": round(os.getloadavg()[0], 1)}
        for name, (wall, cpu) in best.items():
            result[f"{name}_s"] = round(wall, 2)
            result[f"{name}_cpu_s"] = round(cpu, 2)
            result[f"{name}_x_floor"] = round(wall / floor_wall, 2)
            result[f"{name}_cpu_x_floor"] = round(cpu / floor_cpu, 2)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
