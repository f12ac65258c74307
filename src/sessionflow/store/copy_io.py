"""Reading and writing whole tables as Arrow chunks, for ``store copy``, on either backend.

One canonical Arrow schema per table, so a chunk read from DuckDB and one read from
PostgreSQL compare (and checksum) equal when they hold the same rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from sessionflow.store.base import CommandStore
from sessionflow.store.duckdb_store import DuckDBStore
from sessionflow.store.postgres_store import (
    SPECS,
    PostgresStore,
    copy_raw,
    fetch_rows,
    last_per_key,
    named_rows,
    symbol_rows,
    upsert_sql,
)
from sessionflow.store.schema import _tables

_TS = pa.timestamp("us", tz="UTC")
_F, _I = pa.float64(), pa.int64()
SCHEMAS: dict[str, pa.Schema] = {
    "bars_1m": pa.schema(
        [("symbol", pa.string()), ("ts", _TS), ("open", _F), ("high", _F), ("low", _F),
         ("close", _F), ("volume", _I), ("regular", pa.bool_())]
    ),
    "quotes": pa.schema(
        [("symbol", pa.string()), ("ts", _TS)]
        + [(f"{s}_{p}", _I if p == "size" else _F) for s in ("bid", "ask")
           for p in ("open", "high", "low", "close", "size")]
        + [("regular", pa.bool_())]
    ),
    "ticks": pa.schema(
        [("symbol", pa.string()), ("ts", _TS), ("seq", _I), ("price", _F), ("size", _I)]
    ),
    "corporate_actions": pa.schema(
        [("symbol", pa.string()), ("ex_date", pa.date32()), ("split", _F), ("dividend", _F),
         ("dividend_factor", _F)]
    ),
    "symbol_map": pa.schema(
        [("symbol", pa.string()), ("until", pa.date32()), ("ticker", pa.string())]
    ),
}  # fmt: skip
KEYS = {
    "bars_1m": ("symbol", "ts"),
    "quotes": ("symbol", "ts"),
    "ticks": ("symbol", "ts", "seq"),
    "corporate_actions": ("symbol", "ex_date"),
    "symbol_map": ("symbol", "until"),
}
TABLES = tuple(SCHEMAS)


def values(table: str) -> list[str]:
    return [n for n in SCHEMAS[table].names if n not in KEYS[table]]


def table_symbols(store: CommandStore, table: str) -> list[str]:
    """Distinct symbols of ``table`` (none if an older store lacks it)."""
    return store.table_symbols(table)


def count(store: CommandStore, table: str) -> int:
    """Rows of ``table`` (0 if an older store lacks it)."""
    return store.table_count(table)


def dump(store: CommandStore, table: str, symbols: Sequence[str]) -> pa.Table:
    """All rows of ``table`` for ``symbols``, ordered by the table's key, canonical schema."""
    schema, keys = SCHEMAS[table], ", ".join(KEYS[table])
    if isinstance(store, DuckDBStore):
        cur = store._cursor()
        if table not in _tables(cur):
            return schema.empty_table()
        rows = cur.execute(
            f"SELECT {', '.join(_duck_column(f) for f in schema)} FROM {table} "
            f"WHERE symbol IN (SELECT unnest(?)) ORDER BY {keys}",
            [list(symbols)],
        ).fetchnumpy()
        return pa.table({f.name: _arrow(f, rows[f.name]) for f in schema}, schema=schema)
    pg = _pg(store)
    names = sorted(set(symbols))
    if table in SPECS:  # the large tables: packed fixed-width rows, symbols as an index
        spec = SPECS[table]
        types = (("row", "int4"), ("ts", "timestamptz"), *spec.extra_keys, *spec.values)
        sql = (
            f"SELECT (n.row - 1)::int4 AS row, t.ts, {', '.join('t.' + c for c, _ in types[2:])} "
            f"FROM {table} t JOIN unnest(%(names)s::text[]) WITH ORDINALITY n(symbol, row) "
            "USING (symbol)"
        )
        fetched = pg._read(lambda con: fetch_rows(con, sql, {"names": names}, types))
        key_cols = [fetched[k] for k in ("row", *KEYS[table][1:])]
        order = np.lexsort(tuple(reversed(key_cols)))  # key order, as DuckDB's ORDER BY
        cols = {name: col[order] for name, col in fetched.items()}
        arrays: dict[str, Any] = {
            "symbol": pa.array(np.array(names, dtype=object)[cols["row"].astype(np.intp)],
                               type=pa.string()),
            "ts": pa.array(cols["ts"].astype(np.int64), type=_TS),
        }  # fmt: skip
        for name, _ in types[2:]:
            arrays[name] = pa.array(cols[name])
        return pa.table(arrays).cast(schema)
    by = ", ".join(('symbol COLLATE "C"', *KEYS[table][1:]))  # DuckDB's (byte) order
    sql = f"SELECT {', '.join(schema.names)} FROM {table} WHERE symbol = ANY(%s) ORDER BY {by}"
    got = pg._read(lambda con: con.execute(sql, [names]).fetchall())
    columns: list[Any] = list(zip(*got, strict=True)) if got else [[]] * len(schema.names)
    return pa.table(dict(zip(schema.names, columns, strict=True)), schema=schema)


def _duck_column(f: pa.Field) -> str:
    """DuckDB's column as numbers numpy keeps exactly: epoch microseconds, epoch days."""
    if f.type == _TS:
        return f"epoch_us({f.name}) AS {f.name}"
    if f.type == pa.date32():
        return f"datediff('day', DATE '1970-01-01', {f.name})::INTEGER AS {f.name}"
    return str(f.name)


def _arrow(f: pa.Field, values: Any) -> pa.Array:
    arr = np.asarray(values)
    if f.type == _TS:
        return pa.array(arr.astype(np.int64), type=_TS)
    if f.type == pa.date32():
        return pa.array(arr.astype(np.int32), type=pa.date32())
    if f.type == pa.string():
        return pa.array(arr.tolist(), type=pa.string())
    return pa.array(arr, type=f.type)


@contextlib.contextmanager
def transaction(store: CommandStore) -> Iterator[Any]:
    """One write transaction on ``store``; yields what :func:`write` takes."""
    if isinstance(store, DuckDBStore):
        with store.transaction() as cur:
            yield cur
        return
    with _pg(store).transaction() as con:
        yield con


def held_rows_locked(store: CommandStore, handle: Any) -> dict[str, int]:
    """Rows per non-empty table, seen inside :func:`transaction` after locking out writers.

    PostgreSQL: other sessions may commit between a first look and the copy's own
    transaction, so the tables are locked (SHARE ROW EXCLUSIVE: writers wait, readers
    do not) and counted again. A DuckDB file already has one writing process.
    """
    if isinstance(store, DuckDBStore):
        return {}
    handle.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
    counts = {t: int(handle.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}
    return {t: n for t, n in counts.items() if n}


def write(store: CommandStore, handle: Any, table: str, chunk: pa.Table, keep: bool) -> None:
    """Upsert ``chunk`` into ``table`` inside :func:`transaction`; ``keep``: stored rows stay."""
    if not chunk.num_rows:
        return
    keys, vals = KEYS[table], values(table)
    if isinstance(store, DuckDBStore):
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        names = ", ".join(SCHEMAS[table].names)
        handle.register("copy_chunk", chunk)
        try:
            update = "" if keep else (
                "WHEN MATCHED THEN UPDATE SET " + ", ".join(f"{c} = s.{c}" for c in vals) + " "
            )  # fmt: skip
            handle.execute(
                f"MERGE INTO {table} AS t USING copy_chunk AS s ON {on} {update}"
                f"WHEN NOT MATCHED THEN INSERT ({names}) "
                f"VALUES ({', '.join('s.' + n for n in SCHEMAS[table].names)})"
            )
        finally:
            handle.unregister("copy_chunk")
        return
    if table in SPECS:
        spec = SPECS[table]
        names_list, rows = symbol_rows(np.asarray(chunk["symbol"].to_pylist(), dtype=object))
        cols: dict[str, Any] = {"row": rows, "ts": chunk["ts"].cast(pa.int64()).to_numpy()}
        for name, _ in (*spec.extra_keys, *spec.values):
            cols[name] = chunk[name].to_numpy()
        raw = f"sf_copy_{table}"
        handle.execute(f"DROP TABLE IF EXISTS {raw}")
        copy_raw(handle, spec.raw_types, raw, last_per_key(spec, cols))
        handle.execute(upsert_sql(spec, named_rows(spec, raw), keep), {"names": names_list})
        handle.execute(f"DROP TABLE {raw}")
        return
    action = "NOTHING" if keep else "UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in vals)
    names = SCHEMAS[table].names
    statement = (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO {action}"
    )
    with handle.cursor() as cur:
        cur.executemany(statement, [tuple(r.values()) for r in chunk.to_pylist()])


def _pg(store: CommandStore) -> PostgresStore:
    if not isinstance(store, PostgresStore):
        raise TypeError(f"store copy supports DuckDB and PostgreSQL stores, not {store!r}")
    return store


__all__ = ["KEYS", "SCHEMAS", "TABLES", "count", "dump", "table_symbols", "transaction", "write"]
