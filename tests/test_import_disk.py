"""A LEAN import that hits a full disk: the store holds all of the command or none of it.

The import runs in a child process whose file-size limit (RLIMIT_FSIZE, SIGXFSZ
ignored) makes DuckDB's writes fail with EFBIG, as on a full disk. Afterwards the
store must be exactly as before, or hold every file the command reported committed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessionflow.check.stores import store_checksum
from sessionflow.store import DuckDBStore
from tests.helpers import SHARED_DATA, shared_data

LEAN = SHARED_DATA / "lean-minute"
CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from sessionflow.cli.app import main
sys.argv = ["sessionflow", *sys.argv[2:]]
main()
"""


@pytest.fixture(scope="module")
def lean_dir() -> Path:
    return shared_data("lean-minute")


def _cli(limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(limit), *args],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("limit", [300_000, 2_000_000, 64_000_000])
def test_full_disk_during_a_lean_import_commits_all_or_nothing(
    lean_dir: Path, tmp_path: Path, limit: int
) -> None:
    store = tmp_path / "s.duckdb"
    first = _cli(1 << 40, "import", "lean", str(lean_dir / "spy"), "--store", str(store))
    assert first.returncode == 0, first.stderr
    db = DuckDBStore(store)
    before, bars_before = store_checksum(db), db.count_bars()
    db.close()
    files = sorted(str(p) for p in lean_dir.glob("*/*.zip"))

    done = _cli(limit, "import", "lean", str(lean_dir), "--store", str(store), "--json")
    assert "Traceback" not in done.stderr, done.stderr
    reports = json.loads(done.stdout)  # the JSON is complete whatever happened
    assert sorted(r["file"] for r in reports) == files

    db = DuckDBStore(store)  # opens (replaying its WAL) after the failed write
    try:
        if done.returncode == 0:
            assert all(r["committed"] for r in reports)
            assert db.count_bars() == 15_971 and db.count_quotes() == 18_132
        else:
            assert limit < 64_000_000  # room enough: the import must succeed
            assert done.returncode == 2  # a store error: one line, as from every command
            assert not any(r["committed"] for r in reports)
            error = reports[0]["error"]
            assert f"store {store}: the disk is full" in error and "nothing was written" in error
            assert "File too large" in error and ".duckdb" in error  # names the file written
            assert done.stderr.strip() == f"error: {error}"
            assert store_checksum(db) == before and db.count_bars() == bars_before
    finally:
        db.close()
    if limit == 300_000:
        assert done.returncode == 2  # the WAL alone needs more: this limit must fail
