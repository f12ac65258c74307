"""The one place a store is opened from its name: a DuckDB file path or a PostgreSQL URL.

Every command and ``build_system`` go through :func:`open_store`, so ``--store``
(and the ``store_path`` setting) take either form wherever a store is named.
"""

from __future__ import annotations

from pathlib import Path

from sessionflow.store.base import CommandStore

StoreName = str | Path
SCHEMES = ("postgresql://", "postgres://")

__all__ = ["SCHEMES", "StoreName", "is_url", "open_store", "store_label"]


def is_url(name: object) -> bool:
    """A PostgreSQL URL rather than a DuckDB path."""
    return isinstance(name, str) and name.startswith(SCHEMES)


def open_store(name: StoreName, read_only: bool = False, origin: str = "user") -> CommandStore:
    """Open ``name``: ``postgresql://user@host:port/db`` (or ``postgres://``) or a DuckDB path.

    ``read_only`` never writes (DuckDB: many readers share the file; PostgreSQL: the
    server refuses writes). Failures are ``StoreError``s naming the store, one line.
    """
    if is_url(name):
        from sessionflow.store.postgres_store import PostgresStore

        return PostgresStore(str(name), read_only=read_only, origin=origin)
    from sessionflow.store.duckdb_store import DuckDBStore

    return DuckDBStore(name, read_only=read_only, origin=origin)


def store_label(name: StoreName) -> str:
    """How to name the store in messages: a URL loses its password."""
    if not is_url(name):
        return str(name)
    from sessionflow.store.postgres_schema import redact

    return redact(str(name))
