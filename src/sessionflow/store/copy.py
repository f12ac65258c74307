"""``sessionflow store copy SRC DST``: every table from one store into another, checked.

Bars, quotes, ticks, corporate actions and the symbol map are read from the source
in chunks of symbols (bounded memory), and ``fetch_log`` (what downloads completed)
whole, and written into the destination in ONE transaction, so a failure leaves the
destination as it was. Then both sides are read again and checksummed per table over
the same canonical columns (:data:`copy_io.SCHEMAS`), so a DuckDB file and a
PostgreSQL database holding the same rows give the same checksum. A destination
holding rows is refused unless ``on_conflict`` says what to do with them: ``replace``
(the source's values win) or ``keep`` (the destination's stay); with either, the
destination is checksummed over the source's keys, so ``replace`` must still match
exactly.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sessionflow.store.base import FETCH_LOG, CommandStore
from sessionflow.store.copy_io import (
    KEYS,
    SCHEMAS,
    TABLES,
    count,
    dump,
    held_rows_locked,
    table_symbols,
    transaction,
    write,
)
from sessionflow.store.copy_log import SCHEMA as LOG_SCHEMA
from sessionflow.store.copy_log import dump_log, write_log
from sessionflow.store.open import is_url

POLICIES = ("replace", "keep")
CHUNK_SYMBOLS = 100


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int  # rows in the source
    destination_rows: int  # rows in the destination afterwards (over the source's keys)
    source_checksum: str
    destination_checksum: str

    @property
    def equal(self) -> bool:
        return self.rows == self.destination_rows and (
            self.source_checksum == self.destination_checksum
        )


@dataclass(frozen=True)
class CopyResult:
    source: str
    destination: str
    on_conflict: str | None
    tables: list[TableCopy]

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, t in zip(out["tables"], self.tables, strict=True):
            row["equal"] = t.equal
        out["equal"] = self.equal
        return out


class Checksum:
    """SHA-256 per column over canonical little-endian bytes; independent of chunking."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema
        self._parts = {name: hashlib.sha256() for name in schema.names}
        self.rows = 0

    def update(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        for f in self._schema:
            col = table[f.name].combine_chunks() if table.num_rows else pa.array([], f.type)
            self._parts[f.name].update(_bytes(f.type, col))

    def hexdigest(self) -> str:
        whole = hashlib.sha256()
        for name in self._schema.names:
            whole.update(self._parts[name].digest())
        return whole.hexdigest()


def _bytes(kind: pa.DataType, col: pa.Array) -> bytes:
    if kind == pa.string():
        return "".join(f"{v}\0" for v in col.to_pylist()).encode()
    if pa.types.is_timestamp(kind):
        return bytes(col.cast(pa.int64()).to_numpy().astype("<i8").tobytes())
    if kind == pa.date32():
        return bytes(col.cast(pa.int32()).to_numpy().astype("<i4").tobytes())
    if kind == pa.bool_():
        return bytes(col.to_numpy(zero_copy_only=False).astype(np.uint8).tobytes())
    dtype = "<f8" if pa.types.is_floating(kind) else "<i8"
    return bytes(col.to_numpy(zero_copy_only=False).astype(dtype).tobytes())


def _chunks(symbols: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(symbols), size):
        yield list(symbols[i : i + size])


def _on_keys(
    dest: pa.Table, source: pa.Table, keys: Sequence[str], names: Sequence[str]
) -> pa.Table:
    """The destination's rows whose keys the source has, in key order."""
    if not dest.num_rows or not source.num_rows:
        return dest.slice(0, 0)
    got = dest.join(source.select(list(keys)), keys=list(keys), join_type="inner")
    return got.select(list(names)).sort_by([(k, "ascending") for k in keys])


def same_file(source: str, destination: str) -> bool:
    """Two names of one DuckDB file (relative, absolute, a symlink): checked before opening,
    since opening one file read-only and then for writing fails with DuckDB's own error."""
    if is_url(source) or is_url(destination):
        return False
    return os.path.realpath(source) == os.path.realpath(destination)


def held_rows(store: CommandStore) -> dict[str, int]:
    """Rows per table of ``store`` (a destination must be empty without ``on_conflict``)."""
    counts = {table: count(store, table) for table in TABLES}
    return {table: n for table, n in counts.items() if n}


def _refuse_held(destination: CommandStore, held: dict[str, int]) -> None:
    if held:
        what = ", ".join(f"{n:,} {t}" for t, n in held.items())
        raise ValueError(
            f"destination {destination.path} is not empty ({what}); nothing was copied. "
            "Pass --on-conflict replace (the source's rows win) or keep (the destination's "
            "rows stay), or name an empty store"
        )


def copy_store(
    source: CommandStore,
    destination: CommandStore,
    on_conflict: str | None = None,
    chunk_symbols: int = CHUNK_SYMBOLS,
    progress: Callable[[str], None] | None = None,
) -> CopyResult:
    """Copy every table in one destination transaction, then checksum both sides."""
    if on_conflict is not None and on_conflict not in POLICIES:
        raise ValueError(f"--on-conflict {on_conflict!r}: use replace or keep")
    if source.path == destination.path:
        raise ValueError(f"source and destination are the same store ({source.path})")
    if on_conflict is None:
        _refuse_held(destination, held_rows(destination))
    symbols = {t: table_symbols(source, t) for t in TABLES}
    with transaction(destination) as handle:
        if on_conflict is None:  # again, now that no other writer can slip in
            _refuse_held(destination, held_rows_locked(destination, handle))
        for table in TABLES:
            if progress is not None:
                progress(f"copying {table}")
            for part in _chunks(symbols[table], chunk_symbols):
                chunk = dump(source, table, part)
                write(destination, handle, table, chunk, keep=on_conflict == "keep")
        log = dump_log(source)
        write_log(destination, handle, log, keep=on_conflict == "keep")
    tables = []
    for table in TABLES:
        if progress is not None:
            progress(f"checking {table}")
        src, dst = Checksum(SCHEMAS[table]), Checksum(SCHEMAS[table])
        for part in _chunks(symbols[table], chunk_symbols):
            a, b = dump(source, table, part), dump(destination, table, part)
            src.update(a)
            dst.update(_on_keys(b, a, KEYS[table], SCHEMAS[table].names) if on_conflict else b)
        tables.append(TableCopy(table, src.rows, dst.rows, src.hexdigest(), dst.hexdigest()))
    tables.append(_log_copy(log, dump_log(destination), on_conflict is not None))
    return CopyResult(source.path, destination.path, on_conflict, tables)


def _log_copy(source: pa.Table, destination: pa.Table, on_keys: bool) -> TableCopy:
    """``fetch_log``'s check: the destination's rows of the source's keys (all when it was
    empty), checksummed as the data tables are."""
    if on_keys:
        destination = _on_keys(destination, source, ("source", "symbol", "session"),
                               LOG_SCHEMA.names)  # fmt: skip
    src, dst = Checksum(LOG_SCHEMA), Checksum(LOG_SCHEMA)
    src.update(source)
    dst.update(destination)
    return TableCopy(FETCH_LOG, src.rows, dst.rows, src.hexdigest(), dst.hexdigest())
