"""Why a store could not be opened or written, as one line naming the store and what to do.

DuckDB reports every open and write failure as an ``IOException`` whose text
says what happened (a lock held by a PID, a file that is not a database, a
short read, permission, no space). :func:`store_error` turns that text into one
of the classes below, so the CLI prints the message and exits 2, never a
traceback. Each class has a message template; ``str(exc)`` is the whole line.
"""

from __future__ import annotations

import re
from pathlib import Path

SERVER_DOC = "docs/reliability.md#one-store-many-commands"


class StoreError(Exception):
    """A store that cannot be used; the message is one line and names the store."""

    template = "store {path} cannot be used: {detail}"

    def __init__(self, path: str | Path, detail: str = "") -> None:
        self.path = str(path)
        self.detail = " ".join(detail.split())  # DuckDB texts can span lines
        super().__init__(self.template.format(path=self.path, detail=self.detail))

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle as the finished message and fields, so a Dask worker's error arrives whole."""
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(
    cls: type[StoreError], args: tuple[object, ...], state: dict[str, object]
) -> StoreError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class StoreLocked(StoreError):
    template = (
        "store {path} is in use by another process ({detail}); wait for it to finish "
        f"or use a server store (see {SERVER_DOC})"
    )

    def __init__(self, path: str | Path, pid: int | None) -> None:
        self.pid = pid
        super().__init__(path, holder(pid))


class StoreCorrupt(StoreError):
    template = (
        "store {path} is damaged or not a sessionflow store ({detail}); it was not changed; "
        "restore it from a backup or move it away and import again"
    )


class StoreIsDirectory(StoreError):
    template = "store {path} is a directory; name a DuckDB file (in it or elsewhere) or a URL"


class StoreTooNew(StoreError):
    template = "store {path} was written by a newer sessionflow ({detail}); upgrade sessionflow"


class StoreReadOnly(StoreError):
    template = (
        "store {path} cannot be written ({detail}); commands that only read "
        "(backtest, report) still work on it"
    )


class StoreOpenHere(StoreError):
    template = (
        "store {path} is already open read-only in this process (a backtest system); "
        "close it (system.store.close()) before opening it for writing"
    )


class StoreFull(StoreError):
    template = (
        "store {path}: the disk is full ({detail}); nothing was written; free space and retry"
    )


class StoreMissing(StoreError, FileNotFoundError):
    template = "store {path} does not exist; run `sessionflow demo` or import your data"


class StoreMissingHere(StoreMissing):
    """A relative path (the default store is one): where it was looked for."""

    template = (
        "store {path} does not exist (a path relative to the working directory: {detail}); "
        "run `sessionflow demo` or import your data, or pass --store"
    )


def missing_store(path: str | Path) -> StoreMissing:
    """The error for a store file that is not there, saying where a relative one was sought."""
    file = Path(path)
    return (
        StoreMissing(path) if file.is_absolute() else StoreMissingHere(path, str(file.absolute()))
    )


class StoreNotDuckDB(StoreCorrupt):
    template = (
        "store {path} is damaged or not a sessionflow store: not a DuckDB file ({detail}); "
        "it was not changed; --store takes a DuckDB store file "
        "(such as data/sessionflow.duckdb) or a postgresql:// URL; a data file is imported "
        "with `sessionflow import bars FILE`"
    )


class StoreNoData(StoreMissing):
    template = (
        "store {path} holds no sessionflow data yet; import into it (sessionflow import bars "
        "FILE --store URL) or copy a store into it (sessionflow store copy FILE URL)"
    )


class StoreHasUserData(StoreError):
    template = (
        "store {path} holds data the demo did not create ({detail}); the demo never writes "
        "into it: leave out --store to use a separate demo store, or name a new file"
    )


_LOCK = re.compile(r"Could not set lock on file|Conflicting lock", re.IGNORECASE)
_PID = re.compile(r"\(PID (\d+)\)")
_CORRUPT = re.compile(
    r"not a valid DuckDB database|Could not read enough bytes|corrupt|checksum|"
    r"invalid block|Failed to load metadata|unsupported version|"
    r"is not a sessionflow store",
    re.IGNORECASE,
)
_READ_ONLY = re.compile(
    r"Permission denied|Operation not permitted|Read-only file system|read-only mode",
    re.IGNORECASE,
)
_FULL = re.compile(r"No space left|File too large|Disk quota|disk is full|out of disk", re.I)
_QUOTED = re.compile(r'\s*"[^"]*"')
_MISSING = re.compile(r"database does not exist", re.IGNORECASE)


def holder(pid: int | None) -> str:
    """``PID n: <command line>`` for the process holding a lock, as far as /proc says."""
    if pid is None:
        return "PID unknown"
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"PID {pid}"
    cmd = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    if len(cmd) > 120:
        cmd = cmd[:117] + "..."
    return f"PID {pid}: {cmd}" if cmd else f"PID {pid}"


def store_error(path: str | Path, exc: BaseException) -> StoreError | None:
    """The :class:`StoreError` DuckDB's ``exc`` means for ``path``; None if not a store fault."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    first = _QUOTED.sub("", first.removeprefix("IO Error: "))  # the path is named already
    if _LOCK.search(text):
        match = _PID.search(text)
        return StoreLocked(path, int(match.group(1)) if match else None)
    if "different configuration" in text:
        return StoreOpenHere(path)
    if _MISSING.search(text):
        return StoreMissing(path)
    if _FULL.search(text):
        return StoreFull(path, first)
    if _READ_ONLY.search(text):
        return StoreReadOnly(path, first)
    if _CORRUPT.search(text):
        return StoreCorrupt(path, first)
    return None


class StoreUnreachable(StoreError):
    template = (
        "store {path}: cannot connect to the PostgreSQL server ({detail}); "
        "is it running and is the address right?"
    )


class StoreNotPostgres(StoreUnreachable):
    """Something listens at the URL's host:port, but it is another service (HTTP, SSH, ...)."""

    template = (
        "store {path}: {detail} did not answer as PostgreSQL (another service listens there); "
        "check the port in the URL (PostgreSQL's default is 5432)"
    )


class StoreLoginRefused(StoreError):
    template = (
        "store {path}: the PostgreSQL server refused the login ({detail}); give the password "
        "in PGPASSWORD or ~/.pgpass, never on the command line"
    )


class StoreNoDatabase(StoreError, FileNotFoundError):
    template = "store {path}: {detail}; create it first (createdb) or name another database"


class StorePasswordInUrl(StoreError):
    template = (
        "store {path}: the URL carries a password, which would show in process lists, shell "
        "history and logs; remove it and give it in PGPASSWORD or ~/.pgpass"
    )


def is_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C, also when DuckDB caught it first and ended its query with an error of its own
    (``InterruptException``, or ``RuntimeError: Query interrupted`` from a fetch)."""
    import duckdb

    if isinstance(exc, KeyboardInterrupt | duckdb.InterruptException):
        return True
    return isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted"
