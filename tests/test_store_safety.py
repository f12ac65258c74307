"""Issue 9 items 14 and 15: one store, many commands; schema version; a bad store is one line.

Real processes throughout: readers run at the same time as each other, a writer
holds the lock in another process, a child runs under a file-size limit (a full
disk) or as a user who cannot write the file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from sessionflow.check.bad_input import lean_trade_zip
from sessionflow.demo import build_demo_store, synthetic_bars
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import unavailable
from tests.store_support import (
    digest,
    files,
    invoke,
    one_line_error,
    run,
    start,
    write_csv,
)

SCHEMA_VERSION = 2  # this code writes version 2 (sessionflow.store.schema)
RANGE = ("--symbols", "AAPL,MSFT", "--start", "2024-11-27", "--end", "2024-11-29")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can enter (pytest's tmp dirs are private to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="sessionflow-store-"))
    path.chmod(0o755)
    yield path
    path.chmod(0o755)
    for p in path.iterdir():
        subprocess.run(["chattr", "-i", str(p)], capture_output=True, check=False)
        p.chmod(0o644)
    shutil.rmtree(path)


def _demo_store(directory: Path, calendar: ExchangeCalendar) -> Path:
    path = directory / "s.duckdb"
    build_demo_store(path, calendar).close()
    return path


def _backtest(store: Path, cwd: Path, **kw: object) -> subprocess.Popen[str]:
    return start("backtest", *RANGE, "--store", str(store), "--json", cwd=cwd, **kw)  # type: ignore[arg-type]


def _report(store: Path, out: Path, cwd: Path, **kw: object) -> subprocess.Popen[str]:
    return start("report", *RANGE, "--store", str(store), "--output", str(out), cwd=cwd, **kw)  # type: ignore[arg-type]


def _results(procs: list[subprocess.Popen[str]], report_json: Path | None) -> list[object]:
    """Every process's result (backtest sessions and counters, report rows), failing loudly."""
    out: list[object] = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr[-3000:]
        if stdout.lstrip().startswith("{"):
            parsed = json.loads(stdout)
            out.append((parsed["sessions"], parsed["counters"]))
    if report_json is not None:
        out.append(json.loads(report_json.read_text()))
    return out


def test_two_backtests_and_a_report_run_at_once_with_the_same_results(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    store = _demo_store(tmp_path, calendar)
    before = digest(store)
    alone = []
    for make in (_backtest, _backtest):
        alone.extend(_results([make(store, tmp_path)], None))
    _results([_report(store, tmp_path / "alone.json", tmp_path)], tmp_path / "alone.json")
    # a reader in this process for the whole time: a command opening for writing would fail
    reader = duckdb.connect(str(store), read_only=True)
    try:
        procs = [
            _backtest(store, tmp_path),
            _backtest(store, tmp_path),
            _report(store, tmp_path / "together.json", tmp_path),
        ]
        together = _results(procs, tmp_path / "together.json")
    finally:
        reader.close()
    assert together == [*alone, json.loads((tmp_path / "alone.json").read_text())]
    assert together[0] == together[1]
    assert digest(store) == before


def _cannot_write(path: Path) -> dict[str, object]:
    """Make ``path`` unwritable for a child process; the Popen options that run it so.

    Modes are enough for a normal user. Root ignores them, so as root the file is
    made immutable (``chattr +i``, which binds root too) or, where the file system
    has no such flag, the child runs as ``nobody``. A probe child must then fail to
    open the file for writing, or the test is skipped with the reason (failed under CI=true).
    """
    path.chmod(0o444)
    path.parent.chmod(0o555)
    kw: dict[str, object] = {}
    if os.geteuid() == 0:
        chattr = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        if chattr.returncode != 0:
            kw = {"user": 65534}
    try:
        probe = start(cwd=path.parent, prelude=f"open({str(path)!r}, 'ab'); ", **kw)  # type: ignore[arg-type]
        _, err = probe.communicate(timeout=60)
    except OSError as exc:
        err = str(exc)
    if "PermissionError" not in err:
        unavailable(f"cannot make {path} unwritable for a child here: {err[-300:]}")
    return kw


def test_reads_work_on_a_file_the_process_cannot_write(
    shared_dir: Path, calendar: ExchangeCalendar
) -> None:
    store = _demo_store(shared_dir, calendar)
    out = Path(tempfile.mkdtemp(prefix="sessionflow-out-"))
    out.chmod(0o777)
    try:
        alone = _results(
            [_backtest(store, out), _report(store, out / "a.json", out)], out / "a.json"
        )
        before = files(shared_dir)
        kw = _cannot_write(store)
        ro = _results(
            [_backtest(store, out, **kw), _report(store, out / "b.json", out, **kw)],
            out / "b.json",
        )
        assert ro == alone
        csv = write_csv(out / "x.csv", [1.0, 1.0])
        res = run("import", "bars", str(csv), "--symbol", "X", "--store", str(store), cwd=out,
                  **kw)  # fmt: skip
        one_line_error(res, str(store), "cannot be written")
        assert files(shared_dir) == before
    finally:
        shutil.rmtree(out)


def test_reads_work_on_a_read_only_file_system(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    """A read-only bind mount: needs mount rights, else skip (a failure under CI=true)."""
    source, mounted = tmp_path / "source", tmp_path / "ro"
    source.mkdir()
    mounted.mkdir()
    _demo_store(source, calendar)
    alone = _results([_backtest(source / "s.duckdb", tmp_path)], None)
    mount = subprocess.run(
        f"mount --bind {source} {mounted} && mount -o remount,bind,ro {mounted}",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        subprocess.run(["umount", str(mounted)], capture_output=True, check=False)
        unavailable(f"cannot mount a read-only file system here: {mount.stderr.strip()}")
    try:
        store = mounted / "s.duckdb"
        with pytest.raises(OSError):
            (mounted / "probe").touch()
        assert _results([_backtest(store, tmp_path)], None) == alone
        csv = write_csv(tmp_path / "x.csv", [1.0])
        res = run("import", "bars", str(csv), "--symbol", "X", "--store", str(store), cwd=tmp_path)
        one_line_error(res, str(store), "cannot be written", "Read-only file system")
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True, check=True)


def _hold(store: Path, read_only: bool) -> subprocess.Popen[str]:
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
        "print('holding', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(store), "ro" if read_only else "rw"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_writer_holding_the_store_gives_every_command_one_line(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    store = _demo_store(tmp_path, calendar)
    csv = write_csv(tmp_path / "x.csv", [1.0])
    (tmp_path / "lean" / "zzz").mkdir(parents=True)  # a readable LEAN folder: the store is next
    (tmp_path / "lean" / "zzz" / "20131004_trade.zip").write_bytes(lean_trade_zip())
    day = ("--start", "2024-11-25", "--end", "2024-11-25")
    commands = [
        ("import", "bars", str(csv), "--symbol", "X"),
        ("import", "lean", str(tmp_path / "lean")),
        ("demo",),
        ("backtest", "--symbols", "AAPL", *day),
        ("report", "--symbols", "AAPL", *day),
        ("live", "--symbols", "AAPL"),
    ]
    holder = _hold(store, read_only=False)
    try:
        procs = [start(*c, "--store", str(store), cwd=tmp_path) for c in commands]
        for cmd, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=180)
            res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
            line = one_line_error(
                res, str(store), f"is in use by another process (PID {holder.pid}: "
            )
            assert "python" in line and "wait for it to finish" in line, line
    finally:
        holder.communicate("")
    readers = _hold(store, read_only=True)  # readers block a writer the same way
    try:
        res = run("import", "bars", str(csv), "--symbol", "X", "--store", str(store), cwd=tmp_path)
        one_line_error(res, f"PID {readers.pid}: ")
    finally:
        readers.communicate("")


def _truncated(path: Path, calendar: ExchangeCalendar) -> None:
    good = path.with_name("good.duckdb")
    build_demo_store(good, calendar).close()
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    good.unlink()


def _damaged_blocks(path: Path, calendar: ExchangeCalendar) -> None:
    """A store that opens but whose data blocks fail their checksums when read."""
    build_demo_store(path, calendar).close()
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = os.urandom(third)
    path.write_bytes(bytes(data))


DAMAGE = {
    "random bytes": lambda p, _: p.write_bytes(os.urandom(64 * 1024)),
    "truncated store": _truncated,
    "zero-length file": lambda p, _: p.write_bytes(b""),
    "damaged data blocks": _damaged_blocks,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_gives_one_line_and_is_not_changed(
    tmp_path: Path, calendar: ExchangeCalendar, damage: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    store = work / "s.duckdb"
    DAMAGE[damage](store, calendar)
    before = files(work)
    csv = write_csv(tmp_path / "x.csv", [1.0])
    every = ("--symbols", "AAPL,MSFT,NVDA,SPY,QQQ", "--start", "2024-11-20", "--end", "2024-12-05")
    commands = [("backtest", *every), ("import", "bars", str(csv), "--symbol", "X"), ("demo",)]
    if damage == "damaged data blocks":  # found when read; a write elsewhere does not read them
        del commands[1]
    for cmd in commands:
        res = invoke(*cmd, "--store", str(store))
        one_line_error(res, str(store), "is damaged or not a sessionflow store")
        assert files(work) == before, cmd


def _big_csv(path: Path, calendar: ExchangeCalendar) -> Path:
    """Three symbols for two months: 50,000 rows, megabytes more than the disk has left."""
    bars = synthetic_bars(calendar, ["FA", "FB", "FC"], date(2024, 9, 1), date(2024, 10, 31))
    rows = ["timestamp,symbol,open,high,low,close,volume"]
    for b in bars.iter_bars():
        rows.append(f"{b.ts.isoformat()},{b.symbol},{b.open},{b.high},{b.low},{b.close},{b.volume}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_full_disk_gives_one_line_and_keeps_the_store(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    store = tmp_path / "s.duckdb"
    small = DuckDBStore(store)
    small.upsert_bars(synthetic_bars(calendar, ["OLD"], date(2024, 11, 25), date(2024, 11, 25)))
    small.close()
    original = store.read_bytes()
    csv = _big_csv(tmp_path / "big.csv", calendar)
    limit = len(original) + 16 * 1024  # no file may grow more than 16 KiB: a full disk
    prelude = (
        "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
    )
    res = run("import", "bars", str(csv), "--store", str(store), cwd=tmp_path, prelude=prelude)
    one_line_error(res, str(store), "the disk is full", "File too large")
    assert store.read_bytes()[: len(original)] == original  # at most unused space appended
    after = DuckDBStore(store, read_only=True)
    assert after.symbols() == ["OLD"] and after.count_bars() == 390
    after.close()


def test_schema_version_new_legacy_and_newer_stores(tmp_path: Path) -> None:
    fresh = DuckDBStore(tmp_path / "new.duckdb")
    assert fresh.meta == {
        "schema_version": str(SCHEMA_VERSION),
        "created_by": "user",
        "user_data": "false",
    }
    fresh.close()

    legacy = tmp_path / "legacy.duckdb"  # what main wrote: the data tables, no meta table
    con = duckdb.connect(str(legacy))
    con.execute(
        "CREATE TABLE bars_1m (symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, "
        "open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL, "
        "volume BIGINT NOT NULL, regular BOOLEAN NOT NULL DEFAULT TRUE)"
    )
    con.execute("INSERT INTO bars_1m VALUES ('OLD', '2024-11-25 14:30:00+00', 1, 1, 1, 1, 5, true)")
    con.close()
    before = digest(legacy)
    reading = DuckDBStore(legacy, read_only=True)
    assert reading.meta["schema_version"] == "0" and reading.symbols() == ["OLD"]
    reading.close()
    assert digest(legacy) == before  # read as it is, never migrated by a reader
    migrated = DuckDBStore(legacy)
    assert migrated.meta == {
        "schema_version": str(SCHEMA_VERSION),
        "created_by": "legacy",
        "user_data": "true",
    }
    assert migrated.symbols() == ["OLD"] and migrated.count_quotes() == 0
    migrated.close()

    newer = tmp_path / "newer.duckdb"
    DuckDBStore(newer).close()
    con = duckdb.connect(str(newer))
    con.execute("UPDATE sessionflow_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = digest(newer)
    csv = write_csv(tmp_path / "x.csv", [1.0])
    for cmd in (
        ("backtest", "--symbols", "X", "--start", "2024-11-25", "--end", "2024-11-25"),
        ("import", "bars", str(csv), "--symbol", "X"),
    ):
        res = invoke(*cmd, "--store", str(newer))
        one_line_error(res, f"written by a newer sessionflow (schema 99 > {SCHEMA_VERSION})")
    assert digest(newer) == before


def test_a_directory_named_as_the_store_gives_every_command_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    csv = write_csv(tmp_path / "x.csv", [1.0])
    day = ("--start", "2024-11-25", "--end", "2024-11-25")
    for cmd in [
        ("import", "bars", str(csv), "--symbol", "X", "--store", str(folder)),
        ("report", "--symbols", "AAPL", *day, "--store", str(folder)),
        ("store", "info", "--store", str(folder)),
        ("store", "copy", str(folder), str(tmp_path / "copy.duckdb")),
    ]:
        res = invoke(*cmd)
        one_line_error(res, f"store {folder} is a directory; name a DuckDB file (in it or")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("ci", "code", "outcome"), [("true", 1, "FAILED"), ("", 0, "SKIPPED")])
def test_a_missing_prerequisite_fails_under_ci_and_skips_elsewhere(
    tmp_path: Path, ci: str, code: int, outcome: str
) -> None:
    """A machine without mount rights: ``mount`` fails (a stand-in first on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mount"
    fake.write_text("#!/bin/sh\necho 'mount: permission denied' >&2\nexit 32\n")
    fake.chmod(0o755)
    env = {**os.environ, "CI": ci, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    test = f"{Path(__file__)}::test_reads_work_on_a_read_only_file_system"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", test],
        capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1], check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stdout[-2000:]
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith(outcome)]
    assert "cannot mount a read-only file system here: mount: permission denied" in line
