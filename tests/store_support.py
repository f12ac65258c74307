"""Run the real ``sessionflow`` command in child processes, and fingerprint store files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sessionflow

SRC = str(Path(sessionflow.__file__).resolve().parents[1])
CLI = "import sys; from sessionflow.cli.app import main; sys.argv[0] = 'sessionflow'; main()"


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = SRC + os.pathsep + out.get("PYTHONPATH", "")
    out["COLUMNS"] = "200"
    return out


def argv(*args: str, prelude: str = "") -> list[str]:
    return [sys.executable, "-c", prelude + CLI, *args]


def start(
    *args: str,
    cwd: Path,
    prelude: str = "",
    preexec: Callable[[], None] | None = None,
    user: int | None = None,
) -> subprocess.Popen[str]:
    """Start ``sessionflow ARGS`` in ``cwd``; ``prelude`` is Python run before the CLI."""
    extra: dict[str, Any] = {}
    if user is not None:
        extra = {"user": user, "group": user, "extra_groups": []}
    return subprocess.Popen(
        argv(*args, prelude=prelude),
        cwd=cwd,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
        **extra,
    )


def run(*args: str, cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = start(*args, cwd=cwd, **kw)
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    """``sessionflow ARGS`` in this process (typer's runner), as a completed process."""
    from typer.testing import CliRunner

    from sessionflow.cli.app import app

    res = CliRunner().invoke(app, list(args))
    code = res.exit_code if res.exception is None or res.exit_code == 2 else 99
    return subprocess.CompletedProcess(list(args), code, res.stdout, res.stderr)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` (a store and its WAL) by name and checksum."""
    return {p.name: digest(p) for p in sorted(directory.iterdir()) if p.is_file()}


def one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Assert exit 2, one stderr line starting ``error:`` containing ``needles``."""
    err = lines(res.stderr)
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-4000:])
    assert len(err) == 1, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert err[0].startswith("error: store "), err[0]
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    return err[0]


def write_csv(path: Path, closes: Sequence[float], day: str = "2024-11-25") -> Path:
    """One bar per minute from 09:30 ET with the given closes (open=high=low=close)."""
    rows = ["timestamp,open,high,low,close,volume"]
    for i, c in enumerate(closes):
        rows.append(f"{day}T09:{30 + i:02d}:00-05:00,{c},{c},{c},{c},100")
    path.write_text("\n".join(rows) + "\n")
    return path
