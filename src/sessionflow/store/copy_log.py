"""``store copy`` of ``fetch_log``: what a download completed travels with the data.

Why copy it: without it a copied store fetches its whole range once more (every row
``unchanged``). ``fetch_log`` has no symbol-chunked reader and no primary key (it is
made on first use), so it is read whole (one row per symbol, session and kind: small)
and written by key (source, symbol, session): ``replace`` (or an empty destination)
deletes the destination's rows of the source's keys first, ``keep`` adds only the
keys it lacks. Its ``fetched_at`` is copied as it was, so both sides checksum equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from sessionflow.store.base import FETCH_LOG, FETCH_LOG_SQL, CommandStore
from sessionflow.store.copy_io import _pg
from sessionflow.store.duckdb_store import DuckDBStore
from sessionflow.store.schema import _tables

SCHEMA = pa.schema(
    [("source", pa.string()), ("symbol", pa.string()), ("session", pa.date32()),
     ("rows", pa.int64()), ("fetched_at", pa.timestamp("us", tz="UTC"))]
)  # fmt: skip
_KEY = ("source", "symbol", "session")
_ORDER = "source, symbol, session"


def dump_log(store: CommandStore) -> pa.Table:
    """Every ``fetch_log`` row in key order (none when the store never fetched)."""
    if isinstance(store, DuckDBStore):
        cur = store._cursor()
        if FETCH_LOG not in _tables(cur):
            return SCHEMA.empty_table()
        got = cur.execute(
            "SELECT source, symbol, datediff('day', DATE '1970-01-01', session)::INTEGER "
            f"AS session, rows, epoch_us(fetched_at) AS fetched_at FROM {FETCH_LOG} "
            f"ORDER BY {_ORDER}"
        ).fetchnumpy()
        return pa.table(
            {
                "source": pa.array(np.asarray(got["source"]).tolist(), pa.string()),
                "symbol": pa.array(np.asarray(got["symbol"]).tolist(), pa.string()),
                "session": pa.array(np.asarray(got["session"], dtype=np.int32), pa.date32()),
                "rows": pa.array(np.asarray(got["rows"], dtype=np.int64)),
                "fetched_at": pa.array(
                    np.asarray(got["fetched_at"], dtype=np.int64), SCHEMA.field("fetched_at").type
                ),
            },
            schema=SCHEMA,
        )
    pg = _pg(store)

    def read(con: Any) -> list[Any]:
        if con.execute("SELECT to_regclass(%s)", [FETCH_LOG]).fetchone() == (None,):
            return []
        order = 'source COLLATE "C", symbol COLLATE "C", session'  # DuckDB's (byte) order
        return list(con.execute(f"SELECT {', '.join(SCHEMA.names)} FROM {FETCH_LOG} "
                                f"ORDER BY {order}").fetchall())  # fmt: skip

    rows = pg._read(read)
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * len(SCHEMA)
    return pa.table(dict(zip(SCHEMA.names, columns, strict=True)), schema=SCHEMA)


def write_log(store: CommandStore, handle: Any, log: pa.Table, keep: bool) -> None:
    """``log`` into the destination's ``fetch_log`` inside ``copy_io.transaction``."""
    if not log.num_rows:
        return
    match = " AND ".join(f"t.{k} = s.{k}" for k in _KEY)
    if isinstance(store, DuckDBStore):
        handle.execute(FETCH_LOG_SQL)
        handle.register("copy_log", log)
        try:
            if not keep:
                handle.execute(f"DELETE FROM {FETCH_LOG} t USING copy_log s WHERE {match}")
            handle.execute(
                f"INSERT INTO {FETCH_LOG} SELECT s.* FROM copy_log s WHERE NOT EXISTS "
                f"(SELECT 1 FROM {FETCH_LOG} t WHERE {match})"
            )
        finally:
            handle.unregister("copy_log")
        return
    _pg(store)
    handle.execute(FETCH_LOG_SQL.replace("VARCHAR", "text"))
    rows = [tuple(r.values()) for r in log.to_pylist()]
    by_key = " AND ".join(f"{k} = %s" for k in _KEY)
    with handle.cursor() as cur:
        if not keep:
            cur.executemany(f"DELETE FROM {FETCH_LOG} WHERE {by_key}", [r[:3] for r in rows])
        cur.executemany(
            f"INSERT INTO {FETCH_LOG} SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS "
            f"(SELECT 1 FROM {FETCH_LOG} WHERE {by_key})",
            [(*r, *r[:3]) for r in rows],
        )


__all__ = ["SCHEMA", "dump_log", "write_log"]
