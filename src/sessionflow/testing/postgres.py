"""A private PostgreSQL server in a temporary directory, for the tests and ``sessionflow check``.

initdb refuses to run as root and CI runs as root, so there the server runs as an
unprivileged system user (created once with useradd). It listens on a free loopback
port, its unix socket lives in the temporary directory, fsync is off (a throwaway
server loses nothing it needs on a crash). :func:`missing_binaries` says why no
server can start here; the callers decide whether that skips or fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg


def _bin() -> Path:
    """$SESSIONFLOW_PG_BIN, else PostgreSQL 15 (Debian's path), else the newest installed."""
    if "SESSIONFLOW_PG_BIN" in os.environ:
        return Path(os.environ["SESSIONFLOW_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists() or not found:
        return preferred
    return found[-1].parent


BIN = _bin()
USER = "sessionflow-pg"
SECRET_ROLE = "sf_secret"  # a role that must log in with a password (auth tests)
SECRET_PASSWORD = "s3cret-Password"


@dataclass
class PgServer:
    """A running server: ``url(db)`` for a database on it, ``new_db()`` for a fresh one."""

    port: int
    root: Path
    _n: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, db: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def new_db(self, prefix: str = "t", owner: str = "postgres") -> str:
        name = f"{prefix}_{os.getpid()}_{next(self._n)}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name} OWNER {owner}")
        return self.url(name, owner)

    def drop_db(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def missing_binaries(bin_dir: Path | None = None) -> str | None:
    """Why no server can start here (no initdb), or None."""
    where = BIN if bin_dir is None else bin_dir
    if not (where / "initdb").exists():
        return f"{where}/initdb not found (Debian package postgresql-15)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> list[str]:
    """Prefix that runs a command as the unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", USER, "--"]


def _run(cmd: list[str], cwd: Path) -> None:
    """``cwd`` is the server's own directory: the checkout may be unreadable to its user."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """initdb once, start, yield, stop (always) and remove the directory.

    Raises FileNotFoundError with :func:`missing_binaries`' reason when there is no initdb.
    """
    reason = missing_binaries()
    if reason is not None:
        raise FileNotFoundError(reason)
    prefix = _as_user()
    root = Path(tempfile.mkdtemp(prefix="sessionflow-pg-"))
    if prefix:
        uid = pwd.getpwnam(USER)
        os.chown(root, uid.pw_uid, uid.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    started = False
    try:
        _run([*prefix, str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
              "--locale=C", "--auth=trust", "--no-sync"], root)  # fmt: skip
        hba = data / "pg_hba.conf"
        rules = f"host all {SECRET_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text()
        hba.write_text(rules)
        opts = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        _run([*prefix, str(BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
              "-o", opts, "start"], root)  # fmt: skip
        started = True
        server = PgServer(port, root)
        with psycopg.connect(server.url(), autocommit=True) as con:
            con.execute(f"CREATE ROLE {SECRET_ROLE} LOGIN PASSWORD '{SECRET_PASSWORD}'")
        yield server
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _run([*prefix, str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                      "stop"], root)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
