"""The one place a store is opened from its name: a DuckDB file path or a PostgreSQL URL.

Every command and ``build_system`` go through :func:`open_store`, so ``--store``
(and the ``store_path`` setting) take either form wherever a store is named.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from sessionflow.store.base import CommandStore
from sessionflow.store.errors import StorePasswordInUrl

StoreName = str | Path
SCHEMES = ("postgresql://", "postgres://")

__all__ = ["SCHEMES", "StoreName", "has_password", "is_url", "open_store", "store_label"]


def is_url(name: object) -> bool:
    """A PostgreSQL URL rather than a DuckDB path."""
    return isinstance(name, str) and name.startswith(SCHEMES)


def has_password(name: object) -> bool:
    """A URL carrying a password (``user:secret@`` or ``?password=``).

    Percent-decoded first, as libpq decodes a URL's parameter names: ``?pass%77ord=`` is
    a password too."""
    if not is_url(name):
        return False
    text = unquote(str(name))
    auth = text.split("://", 1)[1].split("/", 1)[0]
    return ("@" in auth and ":" in auth.rsplit("@", 1)[0]) or "password=" in text.lower()


def open_store(name: StoreName, read_only: bool = False, origin: str = "user") -> CommandStore:
    """Open ``name``: ``postgresql://user@host:port/db`` (or ``postgres://``) or a DuckDB path.

    ``read_only`` never writes (DuckDB: many readers share the file; PostgreSQL: the
    server refuses writes). Failures are ``StoreError``s naming the store, one line.
    """
    if is_url(name):
        from sessionflow.store.postgres_store import PostgresStore

        if has_password(name):
            raise StorePasswordInUrl(store_label(name))
        return PostgresStore(str(name), read_only=read_only, origin=origin)
    from sessionflow.store.duckdb_store import DuckDBStore

    return DuckDBStore(name, read_only=read_only, origin=origin)


def store_label(name: StoreName) -> str:
    """How to name the store in messages: a URL loses its password."""
    if not is_url(name):
        return str(name)
    from sessionflow.store.postgres_schema import redact

    return redact(str(name))
