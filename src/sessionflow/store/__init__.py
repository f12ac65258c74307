"""Where bars, quotes and ticks are kept: a narrow interface, DuckDB and PostgreSQL backends."""

from sessionflow.store.base import BarBatch, CommandStore, QuoteBatch, Store
from sessionflow.store.duckdb_store import DuckDBStore
from sessionflow.store.open import StoreName, is_url, open_store

__all__ = [
    "BarBatch",
    "CommandStore",
    "DuckDBStore",
    "QuoteBatch",
    "Store",
    "StoreName",
    "is_url",
    "open_store",
]
