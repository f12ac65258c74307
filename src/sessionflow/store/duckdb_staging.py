"""An import's rows staged in DuckDB TEMP tables, then merged in one transaction.

Staging keeps memory bounded (rows go to DuckDB chunk by chunk, spilling to disk past a
memory limit) and lets one SQL pass find conflicts between files and count, per file,
rows new, unchanged, replaced or kept before anything stored changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from sessionflow.store.base import (
    I64,
    BarBatch,
    Conflict,
    MergeCounts,
    QuoteBatch,
    StoreWriteError,
    check_policy,
)
from sessionflow.store.duckdb_store import (
    _BAR_COLS,
    _QUOTE_COLS,
    DuckDBStore,
    _bar_columns,
    _quote_columns,
)
from sessionflow.store.errors import store_error

_STAGED_COLS = {"bars_1m": _BAR_COLS, "quotes": _QUOTE_COLS}


def _as_tuple(v: Any) -> tuple[object, ...]:
    return tuple(v.values()) if isinstance(v, dict) else tuple(v)


def _row(alias: str, cols: Sequence[str]) -> str:
    return "ROW(" + ", ".join(f"{alias}.{c}" for c in cols) + ")"


class DuckDBStagedImport:
    """An import command's rows in TEMP tables (spilled to disk by DuckDB when large).

    Nothing reaches the store until :meth:`merge`, which decides every row against the
    earlier files of the command and the stored rows, then writes in ONE transaction.
    """

    def __init__(self, store: DuckDBStore, memory_mb: int = 256) -> None:
        self._store = store
        self._cur = store._cursor()
        self._tables: list[str] = []
        self._spans_of: dict[str, list[tuple[int, str, int, int, int]]] = {}
        # DuckDB's default (80% of RAM) would let staging hold a whole file in memory;
        # with a limit it spills to its temp directory, which keeps an import's RSS bounded.
        self._memory = self._cur.execute("SELECT current_setting('memory_limit')").fetchall()
        self._cur.execute(f"SET memory_limit = '{int(memory_mb)}MB'")

    def _stage(self, table: str, file: int | I64, lines: I64, cols: dict[str, Any]) -> None:
        name = f"import_stage_{table}"
        try:
            if table not in self._tables:
                self._cur.execute(
                    f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT 0::INTEGER AS file, "
                    f"0::BIGINT AS line, * FROM {table} LIMIT 0"
                )
                self._tables.append(table)
            if not len(lines):
                return
            self._spans_of.pop(table, None)
            files = pa.array(np.broadcast_to(np.asarray(file, dtype=np.int32), len(lines)))
            data = pa.table({"file": files, "line": pa.array(lines, type=pa.int64()), **cols})
            self._cur.register("import_chunk", data)
            try:
                names = ", ".join(data.column_names)
                self._cur.execute(f"INSERT INTO {name} ({names}) SELECT {names} FROM import_chunk")
            finally:
                self._cur.unregister("import_chunk")
        except (duckdb.Error, OSError) as exc:
            raise StoreWriteError(f"staging rows next to {self._store.path} failed: {exc}") from exc

    def add_bars(self, file: int, batch: BarBatch, lines: I64) -> None:
        self._stage("bars_1m", file, lines, _bar_columns(batch))

    def add_quotes(self, file: int, batch: QuoteBatch, lines: I64) -> None:
        self._stage("quotes", file, lines, _quote_columns(batch))

    def add_bars_of(self, files: I64, batch: BarBatch, lines: I64) -> None:
        """Bars of several files at once (``files``: each row's file), in one insert."""
        self._stage("bars_1m", files, lines, _bar_columns(batch))

    def _spans(self, table: str) -> list[tuple[int, str, int, int, int]]:
        """(file, symbol, first and last minute, rows) of the staged rows, once per table."""
        if table not in self._spans_of:
            self._spans_of[table] = self._cur.execute(
                "SELECT file, symbol, epoch_us(min(ts)), epoch_us(max(ts)), count(*) "
                f"FROM import_stage_{table} GROUP BY ALL ORDER BY symbol, min(ts), file"
            ).fetchall()
        return self._spans_of[table]

    def _staged_once(self, table: str) -> bool:
        """No (symbol, minute) is staged by two files: their minute spans per symbol are apart.

        A file's own rows are distinct minutes (its duplicates were rejected), so spans that
        do not overlap mean distinct keys; overlapping spans are decided row by row.
        """
        last: dict[str, int] = {}
        for _, sym, first, final, _ in self._spans(table):
            if sym in last and first <= last[sym]:
                return False
            last[sym] = max(final, last.get(sym, final))
        return True

    def _all_new(self, table: str) -> dict[int, int] | None:
        """Staged rows per file when every row is new (no key staged twice, none stored
        for a staged symbol between the first and last staged minute), else None."""
        spans = self._spans(table)
        if not spans or not self._staged_once(table):
            return None
        stored = self._cur.execute(
            f"SELECT count(*) FROM {table} WHERE ts BETWEEN make_timestamptz($lo) "
            "AND make_timestamptz($hi) AND symbol IN (SELECT unnest($symbols))",
            {"lo": min(s[2] for s in spans), "hi": max(s[3] for s in spans),
             "symbols": sorted({s[1] for s in spans})},
        ).fetchall()[0][0]  # fmt: skip
        if stored:
            return None
        rows: dict[int, int] = {}
        for file, _, _, _, n in spans:
            rows[int(file)] = rows.get(int(file), 0) + int(n)
        return rows

    def conflicts(self, limit: int = 5) -> tuple[int, list[Conflict]]:
        """Rows whose (symbol, minute) an earlier file of this import gave different values."""
        total, examples = 0, []
        for table in self._tables:
            if self._staged_once(table):  # the usual case (a file per symbol or per day)
                continue
            cols = _STAGED_COLS[table]
            cur = _row("s", cols)
            rows = self._cur.execute(
                "WITH s AS (SELECT s.symbol, s.ts, s.file, s.line, "
                f"{cur} AS v, lag({cur}) OVER w AS pv, lag(s.file) OVER w AS pf, "
                f"lag(s.line) OVER w AS pl FROM import_stage_{table} s "
                "WINDOW w AS (PARTITION BY s.symbol, s.ts ORDER BY s.file)), "
                "c AS (SELECT * FROM s WHERE pv IS NOT NULL AND pv IS DISTINCT FROM v) "
                "SELECT (SELECT count(*) FROM c), symbol, epoch_us(ts), pf, pl, file, line, pv, v "
                f"FROM c ORDER BY ts, symbol, file LIMIT {int(limit)}"
            ).fetchall()
            if not rows:
                continue
            total += int(rows[0][0])
            for _, sym, ts, pf, pl, f, ln, pv, v in rows:
                examples.append(
                    Conflict(table, str(sym), int(ts), (int(pf), int(pl)), (int(f), int(ln)),
                             _as_tuple(pv), _as_tuple(v))
                )  # fmt: skip
        return total, examples[:limit]

    def merge(self, policy: str) -> dict[int, MergeCounts]:
        """Write the staged rows in one transaction; per file: new, unchanged, replaced, kept.

        ``replace`` (and ``error``, once :meth:`conflicts` found none): a later file wins
        and a stored row differing from the imported one is replaced. ``keep``: the stored
        row, or else the first file's, stays.
        """
        check_policy(policy)
        counts: dict[int, MergeCounts] = {}
        store = self._store
        with store._write_lock:
            try:
                self._cur.execute("BEGIN TRANSACTION")
                try:
                    for table in self._tables:
                        self._merge_table(table, policy, counts)
                    marked = store.mark_written(self._cur)
                    self._cur.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except (duckdb.Error, OSError) as exc:
                known = store_error(store.path, exc)  # a full disk, a read-only file: one line
                if known is not None:
                    raise known from exc
                raise StoreWriteError(
                    f"writing {store.path} failed: {exc}; rolled back, nothing was written"
                ) from exc
            store._version += 1
            if marked:
                store.meta["user_data"] = "true"
        return counts

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # a failed statement may have ended it already
            self._cur.execute("ROLLBACK")

    def _merge_table(self, table: str, policy: str, counts: dict[int, MergeCounts]) -> None:
        cols = _STAGED_COLS[table]
        new = self._all_new(table)
        if new is not None:  # every policy writes every row: one plain insert, no plan
            names = ", ".join(("symbol", "ts", *cols))
            self._cur.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM import_stage_{table}"
            )
            for file, n in new.items():
                counts.setdefault(file, MergeCounts()).new += n
            return
        cur, old = _row("s", cols), _row("t", cols)
        if policy == "keep":
            prev = "CASE WHEN t.symbol IS NOT NULL THEN " + old + " WHEN k > 1 THEN fv END"
            write = "k = 1 AND t.symbol IS NULL"
        else:
            prev = "CASE WHEN k > 1 THEN pv WHEN t.symbol IS NOT NULL THEN " + old + " END"
            write = f"k = n AND (t.symbol IS NULL OR {old} IS DISTINCT FROM {cur})"
        differs = "replaced" if policy != "keep" else "kept"
        if not self._staged_once(table):
            ranked = (
                f"SELECT *, lag({cur}) OVER w AS pv, first_value({cur}) OVER w AS fv, "
                "row_number() OVER w AS k, count(*) OVER (PARTITION BY s.symbol, s.ts) AS n "
                f"FROM import_stage_{table} s "
                "WINDOW w AS (PARTITION BY s.symbol, s.ts ORDER BY s.file)"
            )
        else:  # no (symbol, minute) staged twice: no window
            ranked = (
                f"SELECT *, NULL AS pv, {cur} AS fv, 1 AS k, 1 AS n FROM import_stage_{table} s"
            )
        plan = (
            f"WITH s AS ({ranked}) "
            f"SELECT s.*, CASE WHEN p IS NULL THEN 'new' WHEN p IS NOT DISTINCT FROM {cur} "
            f"THEN 'unchanged' ELSE '{differs}' END AS status "
            f"FROM (SELECT s.*, {prev} AS p, {write} AS write FROM s "
            f"LEFT JOIN {table} t ON t.symbol = s.symbol AND t.ts = s.ts) s"
        )
        writes = 0  # counted first: a re-import writes nothing and needs no plan table
        for file, status, n, w in self._cur.execute(
            f"SELECT file, status, count(*), count(*) FILTER (WHERE write) FROM ({plan}) "
            "GROUP BY ALL"
        ).fetchall():
            c = counts.setdefault(int(file), MergeCounts())
            setattr(c, str(status), getattr(c, str(status)) + int(n))
            writes += int(w)
        if not writes:
            return
        self._cur.execute(
            f"CREATE OR REPLACE TEMP TABLE import_plan AS SELECT * FROM ({plan}) WHERE write"
        )
        self._cur.execute(
            f"MERGE INTO {table} AS t USING import_plan AS s "
            "ON t.symbol = s.symbol AND t.ts = s.ts "
            f"WHEN MATCHED THEN UPDATE SET {', '.join(f'{c} = s.{c}' for c in cols)} "
            f"WHEN NOT MATCHED THEN INSERT (symbol, ts, {', '.join(cols)}) "
            f"VALUES (s.symbol, s.ts, {', '.join(f's.{c}' for c in cols)})"
        )
        self._cur.execute("DROP TABLE import_plan")

    def close(self) -> None:
        for table in self._tables:
            with contextlib.suppress(duckdb.Error):  # an invalidated database dropped them
                self._cur.execute(f"DROP TABLE IF EXISTS import_stage_{table}")
        self._tables.clear()
        with contextlib.suppress(duckdb.Error):
            self._cur.execute(f"SET memory_limit = '{self._memory[0][0]}'")
