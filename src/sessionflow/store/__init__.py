"""Where bars, quotes and ticks are kept: a narrow interface and an embedded DuckDB backend."""

from sessionflow.store.base import BarBatch, QuoteBatch, Store
from sessionflow.store.duckdb_store import DuckDBStore

__all__ = ["BarBatch", "DuckDBStore", "QuoteBatch", "Store"]
