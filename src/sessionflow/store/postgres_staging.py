"""An import's rows staged in PostgreSQL temporary tables, then merged in one transaction.

The same plan as :mod:`duckdb_staging`: one SQL pass finds conflicts between the
files of the command and counts, per file, rows new, unchanged, replaced or kept,
before anything stored changes; then one ``INSERT ... ON CONFLICT`` per table writes,
in the same transaction as the counts, so a failure writes nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import psycopg

from sessionflow.store import postgres_schema as schema
from sessionflow.store.base import (
    I64,
    BarBatch,
    Conflict,
    MergeCounts,
    QuoteBatch,
    StoreWriteError,
    check_policy,
)
from sessionflow.store.postgres_store import (
    BARS,
    QUOTES,
    Con,
    PostgresStore,
    Spec,
    bar_columns,
    copy_raw,
    quote_columns,
)

_US = "(extract(epoch FROM {}) * 1000000)::int8"


def _eq(a: str, b: str, spec: Spec) -> str:
    """SQL: every value column of ``a`` equals ``b``'s (prefix form: ``pv_`` or ``t.``)."""
    return "(" + " AND ".join(f"{a}{c} IS NOT DISTINCT FROM {b}{c}" for c in spec.columns) + ")"


class PostgresStagedImport:
    """An import command's rows in this connection's temporary tables.

    Nothing reaches the store until :meth:`merge`, which decides every row against the
    earlier files of the command and the stored rows, then writes in ONE transaction.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._con: Con = store._con()
        self._specs: list[Spec] = []

    def _stage(self, spec: Spec, file: int, lines: I64, names: list[str], cols: Any) -> None:
        stage = f"import_stage_{spec.table}"
        values = ", ".join(f"{c} {t}" for c, t in spec.values)
        types = (("row", "int4"), ("i", "int4"), ("line", "int8"), ("ts", "timestamptz"),
                 *spec.values)  # fmt: skip
        try:
            with schema.store_errors(self._store._url):
                if spec not in self._specs:
                    self._con.execute(f"DROP TABLE IF EXISTS {stage}")
                    self._con.execute(
                        f"CREATE TEMP TABLE {stage} (file int4, line int8, symbol text, "
                        f"ts timestamptz, {values})"
                    )
                    self._specs.append(spec)
                if not len(lines):
                    return
                with self._con.transaction():
                    copy_raw(self._con, types, "import_chunk", {**cols, "line": lines})
                    rest = ", ".join(f"r.{c}" for c in spec.columns)
                    self._con.execute(
                        f"INSERT INTO {stage} SELECT %(file)s, r.line, n.symbol, r.ts, {rest} "
                        "FROM import_chunk r JOIN unnest(%(names)s::text[]) WITH ORDINALITY "
                        "n(symbol, row) ON n.row = r.row + 1",
                        {"file": int(file), "names": names},
                    )
                    self._con.execute("DROP TABLE import_chunk")
        except psycopg.Error as exc:
            raise StoreWriteError(f"staging rows next to {self._store.path} failed: {exc}") from exc

    def add_bars(self, file: int, batch: BarBatch, lines: I64) -> None:
        names, cols = bar_columns(batch)
        self._stage(BARS, file, lines, names, cols)

    def add_quotes(self, file: int, batch: QuoteBatch, lines: I64) -> None:
        names, cols = quote_columns(batch)
        self._stage(QUOTES, file, lines, names, cols)

    def add_bars_of(self, files: I64, batch: BarBatch, lines: I64) -> None:
        """Bars of several files (``files``: each row's file), staged file by file."""
        for file in np.unique(files).tolist():
            mask = files == file
            self.add_bars(file, batch.take(mask), lines[mask])

    def conflicts(self, limit: int = 5) -> tuple[int, list[Conflict]]:
        """Rows whose (symbol, minute) an earlier file of this import gave different values."""
        total, examples = 0, []
        for spec in self._specs:
            lags = ", ".join(f"lag(s.{c}) OVER w AS pv_{c}" for c in spec.columns)
            prev = ", ".join(f"pv_{c}" for c in spec.columns)
            cur = ", ".join(spec.columns)
            sql = (
                f"WITH s AS (SELECT s.*, lag(s.file) OVER w AS pf, lag(s.line) OVER w AS pl, "
                f"{lags} FROM import_stage_{spec.table} s "
                "WINDOW w AS (PARTITION BY s.symbol, s.ts ORDER BY s.file, s.line)), "
                f"c AS (SELECT * FROM s WHERE pf IS NOT NULL AND NOT {_eq('pv_', '', spec)}) "
                f"SELECT (SELECT count(*) FROM c), symbol, {_US.format('ts')}, pf, pl, file, line, "
                f'{prev}, {cur} FROM c ORDER BY ts, symbol COLLATE "C", file LIMIT {int(limit)}'
            )
            with schema.store_errors(self._store._url):
                rows = self._con.execute(sql).fetchall()
            if not rows:
                continue
            total += int(rows[0][0])
            k = len(spec.columns)
            for r in rows:
                examples.append(
                    Conflict(spec.table, str(r[1]), int(r[2]), (int(r[3]), int(r[4])),
                             (int(r[5]), int(r[6])), tuple(r[7 : 7 + k]), tuple(r[7 + k :]))
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

        def work(con: Con) -> None:
            # Other writers (an import, live, a copy) wait, and the plan below sees what
            # they committed: counted at READ COMMITTED without it, their rows are "new"
            # and overwritten unseen. Tables in one order (bars_1m, quotes): no deadlock.
            tables = sorted({spec.table for spec in self._specs})
            if tables:
                con.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")
            for spec in self._specs:
                self._merge_table(con, spec, policy, counts)

        self._store.write(work)
        return counts

    def _merge_table(
        self, con: Con, spec: Spec, policy: str, counts: dict[int, MergeCounts]
    ) -> None:
        cols = spec.columns
        window = ", ".join(
            f"lag(s.{c}) OVER w AS pv_{c}, first_value(s.{c}) OVER w AS fv_{c}" for c in cols
        )
        stored = ", ".join(f"t.{c} AS t_{c}" for c in cols)
        if policy == "keep":
            none, same = "NOT stored AND k = 1", f"CASE WHEN stored THEN {_eq('t_', '', spec)} "
            same += f"ELSE {_eq('fv_', '', spec)} END"
            write, differs = "k = 1 AND NOT stored", "kept"
        else:
            none, same = "k = 1 AND NOT stored", f"CASE WHEN k > 1 THEN {_eq('pv_', '', spec)} "
            same += f"ELSE {_eq('t_', '', spec)} END"
            write, differs = f"k = n AND (NOT stored OR NOT {_eq('t_', '', spec)})", "replaced"
        con.execute("DROP TABLE IF EXISTS import_plan")
        con.execute(
            "CREATE TEMP TABLE import_plan AS "
            f"WITH s AS (SELECT s.*, {window}, row_number() OVER w AS k, "
            "count(*) OVER (PARTITION BY s.symbol, s.ts) AS n "
            f"FROM import_stage_{spec.table} s "
            "WINDOW w AS (PARTITION BY s.symbol, s.ts ORDER BY s.file, s.line)), "
            f"j AS (SELECT s.*, t.symbol IS NOT NULL AS stored, {stored} FROM s "
            f"LEFT JOIN {spec.table} t ON t.symbol = s.symbol AND t.ts = s.ts) "
            f"SELECT file, symbol, ts, {', '.join(cols)}, CASE WHEN {none} THEN 'new' "
            f"WHEN {same} THEN 'unchanged' ELSE '{differs}' END AS status, "
            f"({write}) AS write FROM j"
        )
        for file, status, n in con.execute(
            "SELECT file, status, count(*) FROM import_plan GROUP BY 1, 2"
        ).fetchall():
            c = counts.setdefault(int(file), MergeCounts())
            setattr(c, str(status), getattr(c, str(status)) + int(n))
        source = (
            f"SELECT symbol, ts, {', '.join(cols)} FROM import_plan WHERE write ORDER BY symbol, ts"
        )
        names = ", ".join(("symbol", "ts", *cols))
        action = (
            "NOTHING"
            if policy == "keep"
            else "UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in cols)
        )
        con.execute(
            f"INSERT INTO {spec.table} ({names}) {source} ON CONFLICT (symbol, ts) DO {action}"
        )
        con.execute("DROP TABLE import_plan")

    def close(self) -> None:
        for spec in self._specs:
            with contextlib.suppress(psycopg.Error):  # a lost connection dropped them
                self._con.execute(f"DROP TABLE IF EXISTS import_stage_{spec.table}")
        self._specs.clear()
