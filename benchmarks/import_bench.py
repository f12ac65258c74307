"""Peak memory and throughput of ``sessionflow import bars`` and ``import lean``.

Writes a CSV of ``--rows`` 1-minute bars (default 5,000,000, about 320 MB: 10 symbols
over the XNYS regular sessions from 2012) in a temporary directory, then runs
``sessionflow import bars`` on it in a child process and reports the child's peak RSS
(``VmHWM`` from ``/proc/self/status``, printed by the child at exit) and rows per second,
then imports the same file again (every row ``unchanged``) and reports the same figures.
The import must stay under 600 MB whatever the file size (issue 9, item 16).

The floor beside them (issue 23, item 1): DuckDB's own ``read_csv`` of the same file
into a table of a fresh database, in a child process as well (so both include starting
Python). The same rows are also written as LEAN minute zips (one per symbol and day)
and imported with ``sessionflow import lean``; its ratio is to the same CSV floor.

Usage: python benchmarks/import_bench.py [--rows 5000000] [--no-lean] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date, datetime, timedelta
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


def write_lean(csv_path: Path, root: Path) -> int:
    """The CSV's rows as LEAN minute zips: ``<symbol>/<yyyymmdd>_trade.zip``, prices x 10,000."""
    days: dict[tuple[str, str], list[str]] = {}
    with csv_path.open() as fh:
        next(fh)
        for line in fh:
            sym, stamp, o, h, lo, c, v = line.rstrip("\n").split(",")
            local = datetime.fromisoformat(stamp)
            ms = (local.hour * 60 + local.minute) * 60_000
            px = (round(float(x) * 10_000) for x in (o, h, lo, c))
            days.setdefault((sym, local.strftime("%Y%m%d")), []).append(
                f"{ms},{','.join(map(str, px))},{v}\n"
            )
    for (sym, day), rows in days.items():
        folder = root / sym.lower()
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(folder / f"{day}_trade.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{day}_{sym.lower()}_minute_trade.csv", "".join(rows))
    return len(days)


_FLOOR = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("SET enable_progress_bar = false")
t0 = time.perf_counter()
con.execute("CREATE TABLE bars AS SELECT * FROM read_csv(?)", [sys.argv[1]])
print(con.execute("SELECT count(*) FROM bars").fetchone()[0], time.perf_counter() - t0)
"""


def duckdb_floor(csv_path: Path, tmp: Path) -> tuple[float, float]:
    """DuckDB's read_csv of the file into a table: the child's wall seconds and the SQL's."""
    db = tmp / "floor.duckdb"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _FLOOR, str(csv_path), str(db)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.perf_counter() - t0
    db.unlink()
    return wall, float(done.stdout.split()[1])


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
    (report,), wall, peak = import_child(csv_path, store, "bars")
    return report, wall, peak


def import_child(
    csv_path: Path, store: Path, kind: str
) -> tuple[list[dict[str, object]], float, float]:
    """One ``sessionflow import bars|lean`` in a child: its reports, wall seconds, peak RSS (MB)."""
    cmd = [sys.executable, "-c", _CHILD, "import", kind, str(csv_path), "--store", str(store),
           "--json"]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = int(done.stderr.rsplit("peak_kb", 1)[1].split()[0])
    reports = json.loads(done.stdout)
    return reports, wall, peak_kb / 1024


def _total(reports: list[dict[str, object]], key: str) -> int:
    return sum(int(str(r[key])) for r in reports)


def run(rows: int, lean: bool = True) -> dict[str, object]:
    """The DuckDB floor, the CSV import into an empty store and again, the LEAN import."""
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "bars.csv"
        t0 = time.perf_counter()
        n = write_csv(csv_path, rows)
        gen_s = time.perf_counter() - t0
        store = Path(tmp) / "s.duckdb"
        floor, floor_sql = duckdb_floor(csv_path, Path(tmp))
        first, wall, peak = import_child(csv_path, store, "bars")
        again, wall2, peak2 = import_child(csv_path, store, "bars")
        out: dict[str, object] = {
            "rows": n,
            "load_1m": round(os.getloadavg()[0], 1),
            "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
            "generate_s": round(gen_s, 1),
            "duckdb_floor_s": round(floor, 2),
            "duckdb_floor_sql_s": round(floor_sql, 2),
            "new": _total(first, "new"),
            "import_s": round(wall, 1),
            "rows_per_s": round(n / wall),
            "x_floor": round(wall / floor, 2),
            "peak_rss_mb": round(peak, 1),
            "reimport_unchanged": _total(again, "unchanged"),
            "reimport_s": round(wall2, 1),
            "reimport_rows_per_s": round(n / wall2),
            "reimport_x_floor": round(wall2 / floor, 2),
            "reimport_peak_rss_mb": round(peak2, 1),
        }
        if lean:
            zips = write_lean(csv_path, Path(tmp) / "lean")
            reports, wall3, peak3 = import_child(Path(tmp) / "lean", Path(tmp) / "l.duckdb", "lean")
            out.update(
                lean_zips=zips,
                lean_new=_total(reports, "new"),
                lean_s=round(wall3, 1),
                lean_rows_per_s=round(n / wall3),
                lean_x_floor=round(wall3 / floor, 2),
                lean_peak_rss_mb=round(peak3, 1),
            )
        out["load_1m_end"] = round(os.getloadavg()[0], 1)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--no-lean", action="store_true", help="skip the LEAN import")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.rows, lean=not args.no_lean)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>12}: {v}")


if __name__ == "__main__":
    main()
