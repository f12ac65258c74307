"""Open a store by its name, the one string that travels to other processes.

A Dask worker cannot be handed a connection; it gets the store's name and opens it
itself. This is the DuckDB-only form (a path); a server URL backend plugs in here.
"""

from __future__ import annotations

from pathlib import Path

from sessionflow.store.base import Store
from sessionflow.store.duckdb_store import DuckDBStore


def open_store(name: str | Path, read_only: bool = False) -> Store:
    """The store called ``name`` (a DuckDB file path); readers pass ``read_only=True``."""
    path = Path(name)
    if read_only and not path.exists():
        raise FileNotFoundError(f"store {path} does not exist")
    return DuckDBStore(path, read_only=read_only)
