"""Where bars, quotes and ticks are kept: a narrow interface, DuckDB and PostgreSQL backends."""

from sessionflow.store.base import (
    CONFLICT_POLICIES,
    BarBatch,
    CommandStore,
    QuoteBatch,
    Store,
    check_policy,
)
from sessionflow.store.duckdb_store import DuckDBStore
from sessionflow.store.open import StoreName, is_url, open_store

__all__ = [
    "CONFLICT_POLICIES",
    "BarBatch",
    "CommandStore",
    "DuckDBStore",
    "QuoteBatch",
    "Store",
    "StoreName",
    "check_policy",
    "is_url",
    "open_store",
]
