"""Store probes for ``sessionflow check``: one store shared by many commands, bad stores.

- a writer in another process holds the lock: a reader and the ``backtest``
  command each get one line naming the store and the holder's PID, exit 2;
- a reader holds the store: two ``backtest`` processes run at once on it with
  identical results;
- a damaged file (random bytes, truncated, empty) and a store from a newer
  sessionflow: refused with one line, file bytes unchanged;
- the demo next to a user's store: the user's file is not changed; the demo
  runs on ``demo.duckdb`` beside it, or stops when the store was named.

Each probe is judged by file checksums taken before and after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb

from sessionflow.check.faults import FaultResult, write_bar_csv
from sessionflow.demo import prepare_demo_store, synthetic_bars
from sessionflow.importer import import_bars
from sessionflow.store import DuckDBStore
from sessionflow.store.errors import StoreError, StoreHasUserData
from sessionflow.time_provider import ExchangeCalendar

_CLI = "import sys; from sessionflow.cli.app import main; sys.argv[0] = 'sessionflow'; main()"
_HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
    "print('holding', flush=True); sys.stdin.read()"
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(args: Sequence[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _hold(path: Path, read_only: bool) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path), "ro" if read_only else "rw"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "holding":
        proc.kill()
        raise RuntimeError(f"could not hold {path}")
    return proc


def _refused(path: Path, read_only: bool) -> str | None:
    """The one-line message opening ``path`` gives, or None if it opened."""
    try:
        DuckDBStore(path, read_only=read_only).close()
    except StoreError as exc:
        text = str(exc)
        return text if "\n" not in text else None
    return None


def lock_conflict(store: Path, symbols: Sequence[str], day: date, workdir: Path) -> FaultResult:
    """A writer in another process: every opener gets one line with the holder's PID."""
    holder = _hold(store, read_only=False)
    try:
        in_process = _refused(store, read_only=True) or ""
        cmd = _cli(["backtest", "--store", str(store), "--symbols", ",".join(symbols),
                    "--start", day.isoformat(), "--end", day.isoformat()], workdir)  # fmt: skip
        _, err = cmd.communicate(timeout=120)
    finally:
        holder.communicate("")
    lines = [line for line in err.splitlines() if line.strip()]
    pid = f"PID {holder.pid}"
    ok = pid in in_process and cmd.returncode == 2 and len(lines) == 1 and pid in lines[0]
    detail = (
        f"writer PID {holder.pid} holds the store; a reader: {'one line' if in_process else 'NO'}"
        f"; `backtest`: exit {cmd.returncode}, {len(lines)} line(s): "
        f"{lines[0][:110] if lines else '-'}..."
    )
    return FaultResult("store locked by another process", 2, ok, detail)


def shared_readers(store: Path, symbols: Sequence[str], day: date, workdir: Path) -> FaultResult:
    """Two backtest processes and a reader in this process, all on one store at once."""
    before = _digest(store)
    reader = duckdb.connect(str(store), read_only=True)
    try:
        args = ["backtest", "--store", str(store), "--symbols", ",".join(symbols), "--start",
                day.isoformat(), "--end", day.isoformat(), "--json"]  # fmt: skip
        procs = [_cli(args, workdir) for _ in range(2)]
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        reader.close()
    codes = [p.returncode for p in procs]
    same = outs[0][0] == outs[1][0] and bool(outs[0][0])
    ok = codes == [0, 0] and same and _digest(store) == before
    detail = (
        f"2 backtests at once while a reader holds the store: exit {codes}, "
        f"{'identical' if same else 'DIFFERENT'} results, store "
        f"{'unchanged' if _digest(store) == before else 'CHANGED'}"
    )
    return FaultResult("two backtests at once on one store", 2, ok, detail)


def damaged_stores(good: Path, workdir: Path) -> FaultResult:
    """Random bytes, a truncated store, an empty file, a newer schema: one line, unchanged."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    cases = {
        "random bytes": os.urandom(64 * 1024),
        "truncated": data[: len(data) // 2],
        "empty file": b"",
    }
    seen: list[str] = []
    ok = True
    for name, content in cases.items():
        path = workdir / f"{name.replace(' ', '_')}.duckdb"
        path.write_bytes(content)
        messages = [_refused(path, read_only) or "" for read_only in (True, False)]
        fine = all("damaged" in m for m in messages) and path.read_bytes() == content
        ok &= fine
        seen.append(f"{name} {'refused' if fine else 'NOT REFUSED'}")
    newer = workdir / "newer.duckdb"
    shutil.copyfile(good, newer)
    con = duckdb.connect(str(newer))
    con.execute("UPDATE sessionflow_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = _digest(newer)
    messages = [_refused(newer, ro) or "" for ro in (True, False)]
    fine = all("newer sessionflow" in m for m in messages) and _digest(newer) == before
    ok &= fine
    seen.append(f"schema 99 {'refused' if fine else 'NOT REFUSED'}")
    detail = "; ".join(seen) + "; every file byte-identical after (read-only and write opens)"
    return FaultResult("damaged or newer store", 8, ok, detail)


def demo_beside_user_store(workdir: Path, calendar: ExchangeCalendar) -> FaultResult:
    """The demo after an import into the default store: the user's bytes stay as they were."""
    user = workdir / "data" / "sessionflow.duckdb"
    user.parent.mkdir(parents=True, exist_ok=True)
    csv = workdir / "mine.csv"
    write_bar_csv(csv, synthetic_bars(calendar, ["AAPL"], date(2024, 11, 25), date(2024, 11, 25)))
    store = DuckDBStore(user)
    imported = import_bars(store, csv, calendar, "AAPL").imported
    store.close()
    before = _digest(user)
    ran = prepare_demo_store(user, calendar, explicit=False)
    try:
        prepare_demo_store(user, calendar, explicit=True)
        refused = False
    except StoreHasUserData:
        refused = True
    unchanged = _digest(user) == before
    ok = unchanged and ran.path == user.with_name("demo.duckdb") and ran.wrote and refused
    detail = (
        f"{imported} AAPL bars imported into the default store; demo ran on {ran.path.name} "
        f"({'filled' if ran.wrote else 'NOT filled'}); with --store: "
        f"{'refused' if refused else 'NOT refused'}; user store "
        f"{'byte-identical' if unchanged else 'CHANGED'}"
    )
    return FaultResult("demo next to a user's store", 2, ok, detail)


def run_store_probes(
    store: Path, symbols: Sequence[str], day: date, workdir: Path, calendar: ExchangeCalendar
) -> list[FaultResult]:
    """Every probe, on a copy of ``store`` (this process may still read the original)."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = Path(shutil.copyfile(store, workdir / "probe.duckdb"))
    return [
        lock_conflict(store, symbols, day, workdir),
        shared_readers(store, symbols, day, workdir),
        damaged_stores(store, workdir / "damaged"),
        demo_beside_user_store(workdir / "demo", calendar),
    ]
