"""Peak memory and throughput of ``sessionflow import bars`` on one large CSV.

Writes a CSV of ``--rows`` 1-minute bars (default 5,000,000, about 320 MB: 10 symbols
over the XNYS regular sessions from 2012) in a temporary directory, then runs
``sessionflow import bars`` on it in a child process and reports the child's peak RSS
(``VmHWM`` from ``/proc/self/status``, printed by the child at exit) and rows per second,
then imports the same file again (every row ``unchanged``) and reports the same figures.
The import must stay under 600 MB whatever the file size (issue 9, item 16).

Usage: python benchmarks/import_bench.py [--rows 5000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

SYMBOLS = [f"S{i:02d}" for i in range(10)]


def write_csv(path: Path, rows: int) -> int:
    """Rows ordered by time then symbol, every minute of every regular session, offsets given."""
    from sessionflow.time_provider import ExchangeCalendar

    cal = ExchangeCalendar()
    written = 0
    with path.open("w") as fh:
        fh.write("symbol,timestamp,open,high,low,close,volume\n")
        for info in cal.sessions(date(2012, 1, 3), date(2027, 11, 30)):
            minute = info.open.astimezone(cal.tz)
            lines = []
            while minute < info.close:
                stamp = minute.isoformat()
                for k, sym in enumerate(SYMBOLS):
                    p = 100 + (written + k) % 50
                    lines.append(f"{sym},{stamp},{p}.25,{p + 1}.5,{p - 1}.75,{p}.5,{1000 + k}\n")
                written += len(SYMBOLS)
                minute += timedelta(minutes=1)
            fh.writelines(lines)
            if written >= rows:
                break
    return written


# VmHWM is this process's own peak; ru_maxrss also counts the parent's RSS at fork/vfork.
_CHILD = """
import resource, sys
from sessionflow.cli.app import main
sys.argv = ["sessionflow", *sys.argv[1:]]
try:
    main()
finally:
    try:
        with open("/proc/self/status") as fh:
            kb = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:"))
    except OSError:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("peak_kb", kb, file=sys.stderr)
"""


def import_once(csv_path: Path, store: Path) -> tuple[dict[str, object], float, float]:
    """One ``sessionflow import bars`` in a child: its report, wall seconds and peak RSS (MB)."""
    cmd = [sys.executable, "-c", _CHILD, "import", "bars", str(csv_path), "--store", str(store),
           "--json"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = int(done.stderr.rsplit("peak_kb", 1)[1].split()[0])
    (report,) = json.loads(done.stdout)
    return report, wall, peak_kb / 1024


def run(rows: int) -> dict[str, object]:
    """Import the CSV into an empty store, then again (every row unchanged)."""
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "bars.csv"
        t0 = time.perf_counter()
        n = write_csv(csv_path, rows)
        gen_s = time.perf_counter() - t0
        store = Path(tmp) / "s.duckdb"
        first, wall, peak = import_once(csv_path, store)
        again, wall2, peak2 = import_once(csv_path, store)
        return {
            "rows": n,
            "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
            "generate_s": round(gen_s, 1),
            "new": first["new"],
            "import_s": round(wall, 1),
            "rows_per_s": round(n / wall),
            "peak_rss_mb": round(peak, 1),
            "reimport_unchanged": again["unchanged"],
            "reimport_s": round(wall2, 1),
            "reimport_rows_per_s": round(n / wall2),
            "reimport_peak_rss_mb": round(peak2, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.rows)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>12}: {v}")


if __name__ == "__main__":
    main()
