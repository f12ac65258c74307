"""sessionflow against numpy, backtrader and NautilusTrader on one fixed job.

Job (``peers/job.py``): N symbols x D NYSE sessions of 1-minute bars from 2024-11-25
(the 13:00 ET early close on 2024-11-29 included), 2% of minutes missing per symbol
plus stretches that empty whole windows, written once to ``benchmarks/.data/*.parquet``.
Every engine replays it in time order at full speed and derives 5m, 8m (short last
window) and 15m bars aligned to the session open; its consumer passes every 1m and
derived bar to ``Row.add`` (counts, session volume/high/low, per-series checksums).

Each engine x size runs in its own subprocess (peak RSS is that run's alone) under the
peers virtualenv (``bash benchmarks/setup_peers.sh``), writes per-(symbol, session)
results to CSV, and those are checked equal, column by column, against numpy's. Each
runs ``--repeat`` times (default 3); the fastest replay is shown with the load average.

Usage:
    bash benchmarks/setup_peers.sh
    python benchmarks/compare.py --symbols 10,100,500 --sessions 5 \
        [--engines numpy,sessionflow,backtrader,nautilus] [--timeout 1800] \
        [--timeout-for backtrader=900] [--no-readme]

The table goes to stdout and, between markers, into ``benchmarks/README.md``; the raw
results to ``benchmarks/results/compare_<time>.json`` and ``benchmarks/results/csv/``.
This parent process uses the standard library only; children use ``--python``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
DATA_DIR = HERE / ".data"
RESULTS = HERE / "results"
README = HERE / "README.md"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"
ENGINES = (
    "numpy",
    "sessionflow",
    "sessionflow_batch",
    "sessionflow_buffered",
    "sessionflow_noop",
    "sessionflow_batch_noop",
    "backtrader",
    "backtrader_strategy",
    "nautilus",
    "nautilus_actor",
    "nautilus_noop",
)
REFERENCE = "numpy"
# nothing consumed: the delivered totals and the engine's figures (if any) are compared
NOOP = ("sessionflow_noop", "sessionflow_batch_noop", "nautilus_noop")
MARK = "COMPARE_RESULT "


# --------------------------------------------------------------------------- children


def child_engine(engine: str, data: Path, out: Path) -> dict[str, Any]:
    """Run one engine on one data file in this process; returns the JSON record."""
    import importlib
    import importlib.metadata as md

    load_before = os.getloadavg()
    sys.path.insert(0, str(HERE))
    from peers.job import Job, peak_rss_mb, preload_libraries, read_meta

    preload_libraries()
    meta = read_meta(data)
    job = Job(len(meta["symbols"]), len(meta["sessions"]))
    module = importlib.import_module(f"peers.engine_{engine}")
    reference = importlib.import_module(f"peers.engine_{REFERENCE}")
    # numpy's replay just before and just after, in this process: the ratio is taken
    # under the same load, so it does not move with numpy's own time in another child
    numpy_before = reference.run(data, job).replay_s if engine != REFERENCE else None
    res = module.run(data, job)
    numpy_after = reference.run(data, job).replay_s if engine != REFERENCE else None
    written = write_outputs(res, out)
    delivered = res.bars_1m + sum(res.derived.values())
    alternate = {}
    if numpy_before is not None and numpy_after is not None:
        numpy_s = (numpy_before + numpy_after) / 2
        alternate = {
            "numpy_alternate_s": [round(numpy_before, 4), round(numpy_after, 4)],
            "x_numpy_alternate": round(res.replay_s / numpy_s, 3) if numpy_s > 0 else None,
        }
    package = {
        "nautilus": "nautilus_trader",
        "nautilus_actor": "nautilus_trader",
        "nautilus_noop": "nautilus_trader",
        "backtrader_strategy": "backtrader",
        "sessionflow_batch": "sessionflow",
        "sessionflow_buffered": "sessionflow",
        "sessionflow_noop": "sessionflow",
        "sessionflow_batch_noop": "sessionflow",
    }.get(engine, engine)
    return {
        "engine": engine,
        "package": package,
        "version": md.version(package),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "symbols": job.symbols,
        "sessions": job.sessions,
        "bars_1m": res.bars_1m,
        "derived": {str(k): v for k, v in res.derived.items()},
        "load_s": round(res.load_s, 3),
        "replay_s": round(res.replay_s, 3),
        "bars_per_s": round(res.bars_1m / res.replay_s) if res.replay_s > 0 else None,
        "delivered_bars": delivered,
        "ns_per_bar": round(res.replay_s * 1e9 / delivered, 1) if delivered else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **res.extra,
        **written,
        **alternate,
    }


def write_outputs(res: Any, out: Path) -> dict[str, Any]:
    """The consumer's values to ``out``, and its timing and the engine's figures beside it
    when recorded; the paths and the order errors, as ``compare_outputs`` reads them."""
    from peers.job import FIGURES, TIMING, write_csv, write_table

    write_csv(out, res.rows)
    written: dict[str, Any] = {"csv": str(out), "order_errors": res.extra.get("order_errors")}
    for kind, table, columns in (("timing", res.timing, TIMING), ("figures", res.figures, FIGURES)):
        if table is not None:
            path = out.with_suffix(f".{kind}.csv")
            write_table(path, table, columns)
            written[f"{kind}_csv"] = str(path)
    return written


def child_data(symbols: int, sessions: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from peers.job import Job, ensure_data

    t0 = time.perf_counter()
    path = ensure_data(Job(symbols, sessions), DATA_DIR)
    return {"data": str(path), "seconds": round(time.perf_counter() - t0, 2)}


# --------------------------------------------------------------------------- parent


def spawn(
    python: str, args: list[str], timeout: float | None, script: Path | None = None
) -> dict[str, Any]:
    """Run this script (or ``script``) as a child; its record is the stdout line starting
    with MARK."""
    cmd = [python, str(script or Path(__file__).resolve()), *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "timeout", "wall_s": round(time.perf_counter() - t0, 1)}
    wall = round(time.perf_counter() - t0, 1)
    for line in reversed(out.splitlines()):
        if line.startswith(MARK) and proc.returncode == 0:
            rec: dict[str, Any] = json.loads(line[len(MARK) :])
            rec.update(status="ok", wall_s=wall)
            return rec
    tail = (err or out).strip().splitlines()[-15:]
    return {"status": "error", "returncode": proc.returncode, "stderr": tail, "wall_s": wall}


def compare_outputs(reference: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """``run``'s tables against the reference's: the consumer's values (not for a no-op
    consumer), its delivery times and lengths and the engine's own figures (when it
    records them: ``time``/``figures`` are None otherwise), and its order errors."""
    sys.path.insert(0, str(HERE))
    from peers.job import COLUMNS, FIGURES, TIMING, compare_csv

    out: dict[str, Any] = {"equal": True, "columns_differ": {}, "values": None}
    out["missing_rows"] = out["extra_rows"] = 0
    checks = [("timing_csv", TIMING, "time"), ("figures_csv", FIGURES, "figures")]
    if run["engine"] not in NOOP:
        checks.insert(0, ("csv", COLUMNS, "values"))
    elif "bars_1m" in run:  # a no-op consumer: the delivered totals against the reference's
        want = (reference["bars_1m"], sum(reference["derived"].values()))
        got = (run["bars_1m"], sum(run["derived"].values()))
        differ = {} if got == want else {f"delivered 1m/derived {got} != {want}": 1}
        out["values"] = {"equal": not differ, "columns_differ": differ}
        out["values"].update(missing_rows=0, extra_rows=0)
        if differ:
            out["equal"] = False
            out["columns_differ"].update(differ)
    for key, columns, name in checks:
        if key not in run:
            out[name] = None
            continue
        cmp = compare_csv(Path(reference[key]), Path(run[key]), columns)
        out[name] = cmp
        if not cmp["equal"]:
            out["equal"] = False
            prefix = "" if name == "values" else f"{name}:"
            for col, n in cmp["columns_differ"].items():
                out["columns_differ"][prefix + col] = n
            out["missing_rows"] += cmp["missing_rows"]
            out["extra_rows"] += cmp["extra_rows"]
    errors = run.get("order_errors")
    if errors:
        out["equal"] = False
        out["columns_differ"]["order_errors"] = errors
    return out


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the least replay time, with every run's times and load average; a
    failed run makes the record that, and outputs that differ in any run are shown."""
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        return failed[0]
    best = dict(min(runs, key=lambda r: r["replay_s"]))
    differ = [r["compare"] for r in runs if "compare" in r and not r["compare"]["equal"]]
    if differ:
        best["compare"] = differ[0]
    best["runs"] = len(runs)
    best["replay_runs_s"] = [r["replay_s"] for r in runs]
    best["load_runs_s"] = [r["load_s"] for r in runs]
    best["loadavg_runs"] = [r["loadavg_before"][0] for r in runs]
    best["x_numpy_alternate_runs"] = [r.get("x_numpy_alternate") for r in runs]
    arrays = [r["replay_arrays_s"] for r in runs if "replay_arrays_s" in r]
    if arrays:  # the reference: its fastest arrays-only replay, whichever run had it
        best["replay_arrays_s"] = min(arrays)
    return best


def equal_cell(rec: dict[str, Any], part: str = "values") -> str:
    """One of the comparisons (``values``, ``time``, ``figures``): ``yes``, ``no:`` and
    what differed, or ``-`` where the engine does not record it."""
    if rec["status"] != "ok":
        return str(rec["status"])
    if rec["engine"] == REFERENCE:
        return "reference"
    cmp = rec["compare"].get(part, rec["compare"] if part == "values" else None)
    errors = rec.get("order_errors") if part == "time" else None
    if cmp is None:
        return "-"
    if cmp["equal"] and not errors:
        return "yes"
    parts = sorted(cmp["columns_differ"])
    if cmp["missing_rows"] or cmp["extra_rows"]:
        parts.append(f"rows {cmp['missing_rows']} missing/{cmp['extra_rows']} extra")
    if errors:
        parts.append(f"{errors} out of order")
    return "no: " + ", ".join(parts) if parts else "yes"


def loadavg_cell(rec: dict[str, Any]) -> str:
    """1-minute load average before the runs (min-max when repeated)."""
    loads = rec.get("loadavg_runs") or [rec["loadavg_before"][0]]
    lo, hi = f"{min(loads):.1f}", f"{max(loads):.1f}"
    return lo if lo == hi else f"{lo}-{hi}"


def table(records: list[dict[str, Any]]) -> list[str]:
    sf = {
        r["symbols"]: r["bars_per_s"]
        for r in records
        if r["engine"] == "sessionflow" and r["status"] == "ok"
    }
    ref = {
        r["symbols"]: (r["replay_s"], r.get("replay_arrays_s"))
        for r in records
        if r["engine"] == REFERENCE and r["status"] == "ok"
    }
    head = (
        "| engine | symbols | 1m bars | delivered bars | ns/bar | bars/s | vs sessionflow "
        "| x numpy | x numpy arrays | x numpy alternated | load s | replay s | peak MB "
        "| load avg | outputs equal | time and order | engine figures |"
    )
    lines = [head, "|" + "---|" * 17]
    for r in records:
        if r["status"] != "ok":
            limit = f" after {r['wall_s']} s" if r["status"] == "timeout" else ""
            blank = " | " * 13
            lines.append(f"| {r['engine']} | {r['symbols']}{blank}{r['status']}{limit} | | |")
            continue
        base = sf.get(r["symbols"])
        ratio = f"{r['bars_per_s'] / base:.2f}x" if base else "n/a"
        full, arrays = ref.get(r["symbols"], (None, None))
        alt = r.get("x_numpy_alternate")
        lines.append(
            f"| {r['engine']} | {r['symbols']} | {r['bars_1m']:,} "
            f"| {r.get('delivered_bars', 0):,} | {r.get('ns_per_bar') or 0:,.0f} "
            f"| {r['bars_per_s']:,} | {ratio} | {times_cell(r['replay_s'], full)} "
            f"| {times_cell(r['replay_s'], arrays)} | {f'{alt:.2f}x' if alt else '-'} "
            f"| {r['load_s']:.2f} | {r['replay_s']:.2f} | {r['peak_rss_mb']:.0f} "
            f"| {loadavg_cell(r)} | {equal_cell(r)} | {equal_cell(r, 'time')} "
            f"| {equal_cell(r, 'figures')} |"
        )
    return lines


def times_cell(replay_s: float, reference_s: float | None) -> str:
    """How many times numpy's replay this engine's replay took (same bars, same job).

    ``x numpy``: against numpy's whole timed replay, which computes the consumers'
    figures and checksums too; ``x numpy arrays``: against its replay up to the
    derived arrays only (no checksums: the reference's timer before issue 11 round 3)."""
    if not reference_s or reference_s <= 0:
        return "n/a"
    return f"{replay_s / reference_s:.2f}x"


def memory_lines(records: list[dict[str, Any]]) -> list[str]:
    rows = [r for r in records if r["engine"] == "sessionflow" and r["status"] == "ok"]
    if not rows:
        return []
    out = [
        "",
        "sessionflow SessionData after the run (last session + trailing history), "
        "tracemalloc of a pickle round-trip copy:",
        "",
        "| symbols | stored bars (1m / derived / history) | bytes | bytes per stored bar |",
        "|---|---|---|---|",
    ]
    for r in rows:
        s = r["session_data_stored_bars"]
        out.append(
            f"| {r['symbols']} | {s.get('bars_1m', 0):,} / {s.get('derived', 0):,} / "
            f"{s.get('history', 0):,} | {r['session_data_bytes']:,} "
            f"| {r['session_data_bytes_per_stored_bar']} |"
        )
    return out


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs {model}".strip()


def checkout() -> str:
    """The commit of this checkout (read-only; the working tree may hold more)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def versions(records: list[dict[str, Any]]) -> str:
    seen: dict[str, str] = {}
    py = ""
    for r in records:
        if r["status"] == "ok":
            seen.setdefault(r["package"], r["version"])
            py = r["python"]
    parts = [f"{p} {v}" for p, v in seen.items()]
    return f"Python {py}; " + ", ".join(parts)


def write_readme(block: list[str]) -> None:
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    pre, rest = text.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    README.write_text(pre + BEGIN + "\n" + "\n".join(block) + "\n" + END + post)


def parse_timeouts(values: list[str]) -> dict[str, float]:
    out = {}
    for v in values:
        name, _, secs = v.partition("=")
        if name not in ENGINES or not secs:
            raise SystemExit(f"--timeout-for wants ENGINE=SECONDS with ENGINE in {ENGINES}")
        out[name] = float(secs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", default="10,100,500", help="comma-separated sizes")
    ap.add_argument("--sessions", type=int, default=5, help="NYSE sessions from 2024-11-25")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per engine x size")
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs per engine x size; the fastest is shown"
    )
    ap.add_argument("--timeout-for", action="append", default=[], metavar="ENGINE=SECONDS")
    ap.add_argument("--python", default=str(PEERS_PY) if PEERS_PY.exists() else sys.executable)
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite README.md")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--make-data", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(MARK + json.dumps(child_engine(args.child, args.data, args.out)), flush=True)
        return
    if args.make_data:
        sizes = [int(x) for x in args.symbols.split(",")]
        print(MARK + json.dumps(child_data(sizes[0], args.sessions)), flush=True)
        return

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise SystemExit(f"unknown engines {sorted(unknown)}; choose from {ENGINES}")
    if REFERENCE not in engines:
        engines.insert(0, REFERENCE)
    engines.sort(key=ENGINES.index)
    timeouts = parse_timeouts(args.timeout_for)
    sizes = [int(x) for x in args.symbols.split(",")]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    command = "python3 benchmarks/compare.py " + " ".join(
        a if " " not in a else repr(a) for a in sys.argv[1:]
    )

    records: list[dict[str, Any]] = []
    for n in sizes:
        made = spawn(
            args.python,
            ["--make-data", "--symbols", str(n), "--sessions", str(args.sessions)],
            None,
        )
        if made["status"] != "ok":
            raise SystemExit(f"could not build the data file: {made}")
        data = Path(made["data"])
        ref_run: dict[str, Any] | None = None
        for engine in engines:
            out = RESULTS / "csv" / f"{engine}_{n}x{args.sessions}.csv"
            for old in (out, out.with_suffix(".timing.csv"), out.with_suffix(".figures.csv")):
                old.unlink(missing_ok=True)
            limit = timeouts.get(engine, args.timeout)
            print(f"[{n} symbols] {engine} ...", file=sys.stderr, flush=True)
            runs = []
            for _ in range(args.repeat):
                run = spawn(
                    args.python,
                    ["--child", engine, "--data", str(data), "--out", str(out)],
                    limit,
                )
                if run["status"] == "ok" and engine != REFERENCE and ref_run is not None:
                    run["compare"] = compare_outputs(ref_run, run)
                runs.append(run)
                if run["status"] != "ok":
                    break
            rec = best_of(runs)
            rec.setdefault("engine", engine)
            rec.setdefault("symbols", n)
            rec.setdefault("sessions", args.sessions)
            rec["timeout_s"] = limit
            if rec["status"] == "ok" and engine == REFERENCE:
                ref_run = rec
            print(f"    {json.dumps(rec)[:400]}", file=sys.stderr, flush=True)
            records.append(rec)

    lines = table(records)
    block = [
        f"Command: `{command}`  ",
        f"Run: {stamp}; {machine()}; {versions(records)}; checkout {checkout()}.",
        "",
        *lines,
        *memory_lines(records),
    ]
    print("\n".join(block))
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_file = RESULTS / f"compare_{stamp}.json"
    result_file.write_text(
        json.dumps(
            {
                "command": command,
                "machine": machine(),
                "checkout": checkout(),
                "records": records,
            },
            indent=2,
        )
    )
    print(f"\nresults: {result_file}", file=sys.stderr)
    if not args.no_readme:
        write_readme(block)
        print(f"table written to {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
