"""Opening a DuckDB store: the lock, the schema version, migrations, who wrote the data.

A small ``sessionflow_meta`` table holds ``schema_version``, ``created_by``
(``demo``, ``user`` or ``legacy``) and ``user_data`` (``true`` once anything but
the demo has written). Versions: 0 is a store from before the meta table (the
three data tables only), 1 adds the meta table, 2 the ``corporate_actions`` and
``symbol_map`` tables. Opening for writing creates a
new store or migrates an older one in one transaction; opening read-only never
writes, so an older store is read as it is. A newer store is refused either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from sessionflow.store.errors import (
    StoreCorrupt,
    StoreIsDirectory,
    StoreNotDuckDB,
    StoreReadOnly,
    StoreTooNew,
    missing_store,
    store_error,
)

SCHEMA_VERSION = 2
META_TABLE = "sessionflow_meta"
_DATA_TABLES = ("bars_1m", "quotes", "ticks")


@contextlib.contextmanager
def store_errors(path: str) -> Iterator[None]:
    """Re-raise DuckDB's open/IO failures on ``path`` as the matching :class:`StoreError`."""
    try:
        yield
    except duckdb.Error as exc:
        err = store_error(path, exc)
        if err is None:
            raise
        raise err from exc


def rollback(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed COMMIT has already ended it)."""
    with contextlib.suppress(duckdb.TransactionException):
        cur.execute("ROLLBACK")


def connect(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Connect, or raise a :class:`StoreError` naming the store and the reason."""
    if path == ":memory:":
        return duckdb.connect(path)
    file = Path(path)
    if file.is_dir():
        raise StoreIsDirectory(path)
    if read_only and not file.exists():
        raise missing_store(path)
    _check_duckdb_file(path, file)
    if not read_only:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreReadOnly(path, f"cannot create {file.parent}: {exc.strerror}") from exc
    with store_errors(path):
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.ConnectionException as exc:
            # DuckDB shares one database per file within a process and will not mix
            # modes; a reader in a process that already writes the file shares that
            if not (read_only and "different configuration" in str(exc)):
                raise
            return duckdb.connect(path)


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


def _check_duckdb_file(path: str, file: Path) -> None:
    """A CSV or any other file given as the store: say so, not DuckDB's own puzzle."""
    try:
        with file.open("rb") as fh:
            head = fh.read(12)
    except OSError:
        return  # missing or unreadable: the connect names that
    if head and head[8:12] != DUCKDB_MAGIC:
        raise StoreNotDuckDB(path, f"it starts with {head!r}")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()
    return {str(r[0]) for r in rows}


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(f"SELECT key, value FROM {META_TABLE}").fetchall()
    return {str(k): str(v) for k, v in rows}


def prepare(
    con: duckdb.DuckDBPyConnection, path: str, read_only: bool, origin: str, tables_sql: str
) -> dict[str, str]:
    """Check the schema version; create or migrate it when writing. Returns the meta values."""
    with store_errors(path):
        tables = _tables(con)
        if META_TABLE in tables:
            meta = read_meta(con)
            version = _version(path, meta)
            if version > SCHEMA_VERSION:
                raise StoreTooNew(path, f"schema {version} > {SCHEMA_VERSION}")
            if version < SCHEMA_VERSION and not read_only:
                _upgrade(con, meta, tables_sql)
            return meta
        if tables and "bars_1m" not in tables:
            raise StoreCorrupt(path, f"is not a sessionflow store: {len(tables)} other tables")
        if read_only:
            if not tables:
                raise StoreCorrupt(path, "is not a sessionflow store: it has no tables")
            return {"schema_version": "0", "created_by": "legacy"}
        return _create_or_migrate(con, tables, origin, tables_sql)


def _version(path: str, meta: dict[str, str]) -> int:
    try:
        return int(meta.get("schema_version", ""))
    except ValueError:
        raise StoreCorrupt(
            path, f"schema_version {meta.get('schema_version')!r} is not a number"
        ) from None


def _create_or_migrate(
    con: duckdb.DuckDBPyConnection, tables: set[str], origin: str, tables_sql: str
) -> dict[str, str]:
    """One transaction: a failure (full disk) leaves the file as it was."""
    legacy = bool(tables)
    con.execute("BEGIN TRANSACTION")
    try:
        if legacy:  # version 0: any row in it is someone's data
            rows = sum(
                int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0])
                for t in _DATA_TABLES
                if t in tables
            )
            meta = {"created_by": "legacy", "user_data": "true" if rows else "false"}
        else:
            meta = {"created_by": "demo" if origin == "demo" else "user", "user_data": "false"}
        meta["schema_version"] = str(SCHEMA_VERSION)
        con.execute(tables_sql)
        con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR NOT NULL, value VARCHAR NOT NULL)")
        con.executemany(f"INSERT INTO {META_TABLE} VALUES (?, ?)", sorted(meta.items()))
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return meta


def _upgrade(con: duckdb.DuckDBPyConnection, meta: dict[str, str], tables_sql: str) -> None:
    """Version 1 to now: add the missing tables (``IF NOT EXISTS``) in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(tables_sql)
        con.execute(
            f"UPDATE {META_TABLE} SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)]
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    meta["schema_version"] = str(SCHEMA_VERSION)


def mark_user_data(cur: duckdb.DuckDBPyConnection) -> None:
    """Inside the caller's write transaction: the store now holds data the demo did not make."""
    cur.execute(f"UPDATE {META_TABLE} SET value = 'true' WHERE key = 'user_data'")
