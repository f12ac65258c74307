"""Opening a PostgreSQL store: the connection, the schema version, migrations, errors.

The tables mirror the DuckDB store's, with real primary keys (PostgreSQL enforces
them cheaply and ``INSERT ... ON CONFLICT`` needs them) and ``timestamptz`` columns.
``sessionflow_meta`` holds ``schema_version``, ``created_by``, ``user_data`` and
``data_version``, the counter every write transaction bumps as its last statement,
so readers in other processes see a new version exactly when the rows are visible.
Creating or migrating runs in one transaction under an advisory lock, so two
commands opening a new database at once do not race. Read-only connections set
``default_transaction_read_only``: the server itself refuses any write.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from sessionflow.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLoginRefused,
    StoreNoData,
    StoreNoDatabase,
    StoreNotPostgres,
    StoreReadOnly,
    StoreTooNew,
    StoreUnreachable,
)
from sessionflow.store.postgres_probe import connect_watched
from sessionflow.store.schema import META_TABLE, SCHEMA_VERSION

_LOCK_KEY = 0x5E55_10F1  # pg_advisory_xact_lock key while creating or migrating

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS bars_1m (
    symbol text NOT NULL, ts timestamptz NOT NULL,
    open float8 NOT NULL, high float8 NOT NULL, low float8 NOT NULL, close float8 NOT NULL,
    volume int8 NOT NULL, regular boolean NOT NULL DEFAULT true,
    PRIMARY KEY (symbol, ts)
);
CREATE TABLE IF NOT EXISTS quotes (
    symbol text NOT NULL, ts timestamptz NOT NULL,
    bid_open float8, bid_high float8, bid_low float8, bid_close float8, bid_size int8,
    ask_open float8, ask_high float8, ask_low float8, ask_close float8, ask_size int8,
    regular boolean NOT NULL DEFAULT true,
    PRIMARY KEY (symbol, ts)
);
CREATE TABLE IF NOT EXISTS ticks (
    symbol text NOT NULL, ts timestamptz NOT NULL, seq int8 NOT NULL,
    price float8 NOT NULL, size int8 NOT NULL,
    PRIMARY KEY (symbol, ts, seq)
);
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol text NOT NULL, ex_date date NOT NULL,
    split float8 NOT NULL, dividend float8 NOT NULL, dividend_factor float8 NOT NULL,
    PRIMARY KEY (symbol, ex_date)
);
CREATE TABLE IF NOT EXISTS symbol_map (
    symbol text NOT NULL, until date NOT NULL, ticker text NOT NULL,
    PRIMARY KEY (symbol, until)
);
"""

# schema version n -> SQL that brings a version n store to n + 1 (the tables above are
# written with IF NOT EXISTS, so a migration that adds tables just runs them again)
MIGRATIONS: dict[int, str] = {1: TABLES_SQL}


def redact(url: str) -> str:
    """``postgresql://user@host:port/db`` without a password or options: safe to print."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return url.split("://", 1)[0] + "://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{address(url)}/{parts.get('dbname', '')}"


def address(url: str) -> str:
    """``host:port`` the URL points at (libpq's defaults when left out)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "?"
    host = str(parts.get("host") or "localhost")
    return f"{host}:{parts.get('port') or 5432}"


_REFUSED = re.compile(r"Connection refused", re.I)
_NO_HOST = re.compile(r"could not translate host name|Name or service not known", re.I)
_TIMEOUT = re.compile(r"timeout expired|timed out", re.I)
_LOGIN = re.compile(
    r"password authentication failed[^\n]*|no password supplied|role \"[^\"]*\" does not exist|"
    r"no pg_hba.conf entry[^\n]*|authentication failed[^\n]*",
    re.I,
)
_NO_DB = re.compile(r"database \"[^\"]*\" does not exist", re.I)
_NOT_PG = re.compile(
    r"invalid response to SSL negotiation|expected authentication request from server|"
    r"received invalid response|server sent data .* without prior",
    re.I,
)
_LOST = re.compile(r"server closed the connection|terminating connection|connection is lost", re.I)


def pg_error(url: str, exc: BaseException) -> StoreError | None:
    """The :class:`StoreError` ``exc`` means for the store at ``url``; None if not a store fault."""
    name, text = redact(url), str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return StoreReadOnly(name, "it was opened read-only")
    if isinstance(exc, pg_errors.DiskFull):
        return StoreFull(name, first)
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return StoreReadOnly(name, first)
    if isinstance(exc, pg_errors.DataCorrupted | pg_errors.IndexCorrupted):
        return StoreCorrupt(name, first)
    if not isinstance(exc, psycopg.OperationalError):
        return None
    if login := _LOGIN.search(text):
        return StoreLoginRefused(name, login.group(0))
    if db := _NO_DB.search(text):
        return StoreNoDatabase(name, db.group(0))
    where = address(url)
    if _NOT_PG.search(text):
        return StoreNotPostgres(name, where)
    if _REFUSED.search(text):
        return StoreUnreachable(name, f"{where}: connection refused")
    if _NO_HOST.search(text):
        return StoreUnreachable(name, f"{where}: host name not found")
    if _TIMEOUT.search(text):
        return StoreUnreachable(name, f"{where}: timed out")
    if _LOST.search(text):
        return StoreUnreachable(name, f"{where}: connection lost")
    return StoreUnreachable(name, f"{where}: {first}")


@contextlib.contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Re-raise psycopg failures that are store faults as the matching :class:`StoreError`."""
    try:
        yield
    except psycopg.Error as exc:
        err = pg_error(url, exc)
        if err is None:
            raise
        raise err from None  # psycopg's chained text may quote the connection string


def connect(url: str, read_only: bool) -> psycopg.Connection[TupleRow]:
    """An autocommit connection in UTC; read-only ones cannot write at all."""
    opts = "-c TimeZone=UTC -c jit=off"  # JIT only slows the short queries of a session read
    opts += " -c default_transaction_read_only=on" if read_only else ""
    name = redact(url)

    def attempt() -> psycopg.Connection[TupleRow]:
        return psycopg.connect(
            url, autocommit=True, options=opts, connect_timeout=10, application_name="sessionflow"
        )

    with store_errors(url):
        return connect_watched(
            url, attempt, lambda con: con.close(), lambda where: StoreNotPostgres(name, where)
        )


def read_meta(con: psycopg.Connection[TupleRow]) -> dict[str, str]:
    rows = con.execute(f"SELECT key, value FROM {META_TABLE}").fetchall()
    return {str(k): str(v) for k, v in rows}


def _has_meta(con: psycopg.Connection[TupleRow]) -> bool:
    row = con.execute("SELECT to_regclass(%s) IS NOT NULL", [META_TABLE]).fetchone()
    return bool(row and row[0])


def prepare(
    con: psycopg.Connection[TupleRow], url: str, read_only: bool, origin: str
) -> dict[str, str]:
    """Check the schema version; create or migrate it when writing. Returns the meta values."""
    name = redact(url)
    with store_errors(url):
        if read_only:
            if not _has_meta(con):
                raise StoreNoData(name)  # the demo refuses a server: its advice would not fit
            meta = read_meta(con)
            _check_version(name, meta)
            return meta
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not _has_meta(con):
                return _create(con, origin)
            meta = read_meta(con)
            version = _check_version(name, meta)
            while version < SCHEMA_VERSION:
                con.execute(MIGRATIONS[version])
                version += 1
            if str(version) != meta.get("schema_version"):
                con.execute(
                    f"UPDATE {META_TABLE} SET value = %s WHERE key = 'schema_version'",
                    [str(version)],
                )
                meta["schema_version"] = str(version)
            return meta


def _check_version(name: str, meta: dict[str, str]) -> int:
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise StoreCorrupt(
            name, f"schema_version {meta.get('schema_version')!r} is not a number"
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreTooNew(name, f"schema {version} > {SCHEMA_VERSION}")
    if version < 1:
        raise StoreCorrupt(name, f"schema_version {version} is not a PostgreSQL store's")
    return version


def _create(con: psycopg.Connection[TupleRow], origin: str) -> dict[str, str]:
    meta = {
        "created_by": "demo" if origin == "demo" else "user",
        "user_data": "false",
        "schema_version": str(SCHEMA_VERSION),
        "data_version": "0",
    }
    con.execute(TABLES_SQL)
    con.execute(f"CREATE TABLE {META_TABLE} (key text PRIMARY KEY, value text NOT NULL)")
    with con.cursor() as cur:
        cur.executemany(f"INSERT INTO {META_TABLE} VALUES (%s, %s)", sorted(meta.items()))
    return meta
