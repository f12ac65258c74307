"""Fixed-width rows to and from PostgreSQL as one buffer, encoded and decoded with numpy.

Why: a 500-symbol session is ~200,000 bars; building one Python object per row (a
cursor fetch, ``copy.write_row``, even iterating a COPY, which libpq hands over one
row at a time) costs several times the query. Writes send one binary COPY stream;
reads ask the server to pack every row with the types' ``*send`` functions into one
``bytea`` (``string_agg``). With only fixed-width columns both are one numpy
structured array. Symbols travel as an ``int4`` index into a list the SQL joins
(``unnest(...) WITH ORDINALITY``), so no text column is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
PG_EPOCH_DAYS = 10_957  # 2000-01-01 in Unix days

# PostgreSQL type -> big-endian numpy dtype of its binary form
_TYPES = {
    "int4": ">i4",
    "int8": ">i8",
    "float8": ">f8",
    "bool": "?",
    "timestamptz": ">i8",  # microseconds since 2000-01-01 UTC
    "date": ">i4",  # days since 2000-01-01
}


def _dtype(types: Sequence[tuple[str, str]]) -> np.dtype[Any]:
    fields: list[tuple[str, str]] = [("_n", ">i2")]
    for name, pg in types:
        fields += [(f"_l_{name}", ">i4"), (name, _TYPES[pg])]
    return np.dtype(fields)


def encode(types: Sequence[tuple[str, str]], columns: dict[str, Any]) -> bytes:
    """A complete binary COPY stream of ``columns`` (Unix us for timestamptz, days for date)."""
    dt = _dtype(types)
    n = len(columns[types[0][0]]) if types else 0
    rows = np.empty(n, dtype=dt)
    rows["_n"] = len(types)
    for name, pg in types:
        rows[f"_l_{name}"] = np.dtype(_TYPES[pg]).itemsize
        values = np.asarray(columns[name])
        if pg == "timestamptz":
            values = values.astype(np.int64) - PG_EPOCH_US
        elif pg == "date":
            values = values.astype(np.int64) - PG_EPOCH_DAYS
        rows[name] = values
    return HEADER + rows.tobytes() + TRAILER


_SEND = {"int4": "int4send", "int8": "int8send", "float8": "float8send", "bool": "boolsend",
         "timestamptz": "timestamptz_send", "date": "date_send"}  # fmt: skip


def pack_sql(types: Sequence[tuple[str, str]], select: str) -> str:
    """SQL returning ``select``'s rows (columns named as ``types``) packed in one bytea."""
    row = " || ".join(f"{_SEND[pg]}(q.{name})" for name, pg in types)
    return f"SELECT string_agg({row}, ''::bytea) FROM ({select}) q"


def unpack(types: Sequence[tuple[str, str]], data: bytes | None) -> dict[str, Any]:
    """Columns (native byte order, Unix us / days) from :func:`pack_sql`'s bytea."""
    dt = np.dtype([(name, _TYPES[pg]) for name, pg in types])
    rows = np.frombuffer(data or b"", dtype=dt)
    return {name: _native(rows[name], pg) for name, pg in types}


def _native(col: Any, pg: str) -> Any:
    out = col.astype(np.dtype(_TYPES[pg]).newbyteorder("="))
    if pg == "timestamptz":
        return out.astype(np.int64) + PG_EPOCH_US
    if pg == "date":
        return out.astype(np.int64) + PG_EPOCH_DAYS
    return out


def decode(types: Sequence[tuple[str, str]], data: bytes) -> dict[str, Any]:
    """Columns (native byte order) from a binary COPY stream; NULLs are not supported."""
    dt = _dtype(types)
    start = len(HEADER)
    if not data.startswith(HEADER[:11]):
        raise ValueError("not a PostgreSQL binary COPY stream")
    ext = int.from_bytes(data[15:19], "big")
    start = 19 + ext
    body = data[start : len(data) - len(TRAILER)]
    if len(body) % dt.itemsize:
        raise ValueError("binary COPY rows are not fixed-width (a NULL or a text column?)")
    rows = np.frombuffer(body, dtype=dt)
    return {name: _native(rows[name], pg) for name, pg in types}
