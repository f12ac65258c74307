"""The embedded default store: one DuckDB file.

DuckDB has no PRIMARY KEY here by design (it makes bulk upserts slow); uniqueness
of (symbol, ts) is kept by writing only through ``MERGE`` inside one transaction,
so a failed write leaves the file exactly as it was.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sessionflow.models import Tick, from_us, to_us
from sessionflow.store import schema
from sessionflow.store.base import (
    FETCH_LOG,
    FETCH_LOG_SQL,
    ROW_TABLES,
    BarBatch,
    MergeCounts,
    QuoteBatch,
)

if TYPE_CHECKING:
    from sessionflow.corporate_actions import Action, MapEntry
    from sessionflow.store.duckdb_staging import DuckDBStagedImport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bars_1m (
    symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
    volume BIGINT NOT NULL, regular BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE IF NOT EXISTS quotes (
    symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    bid_open DOUBLE, bid_high DOUBLE, bid_low DOUBLE, bid_close DOUBLE, bid_size BIGINT,
    ask_open DOUBLE, ask_high DOUBLE, ask_low DOUBLE, ask_close DOUBLE, ask_size BIGINT,
    regular BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE IF NOT EXISTS ticks (
    symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, seq BIGINT NOT NULL,
    price DOUBLE NOT NULL, size BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol VARCHAR NOT NULL, ex_date DATE NOT NULL,
    split DOUBLE NOT NULL, dividend DOUBLE NOT NULL, dividend_factor DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS symbol_map (
    symbol VARCHAR NOT NULL, until DATE NOT NULL, ticker VARCHAR NOT NULL
);
"""

_BAR_COLS = ("open", "high", "low", "close", "volume", "regular")
_QUOTE_COLS = (
    "bid_open", "bid_high", "bid_low", "bid_close", "bid_size",
    "ask_open", "ask_high", "ask_low", "ask_close", "ask_size", "regular",
)  # fmt: skip


def _ts_array(ts_us: np.ndarray[Any, Any]) -> pa.Array:
    return pa.array(ts_us.astype(np.int64), type=pa.timestamp("us", tz="UTC"))


def _bar_columns(batch: BarBatch) -> dict[str, Any]:
    """A bar batch as the store's columns (Arrow-ready), for upserts and staging alike.

    Symbols go to Arrow from the object array itself: through a list it was 5x the cost
    (280 against 50 ns a row), a second of a 5M-row import.
    """
    return {
        "symbol": pa.array(batch.symbol, type=pa.string()),
        "ts": _ts_array(batch.ts_us),
        "open": batch.open,
        "high": batch.high,
        "low": batch.low,
        "close": batch.close,
        "volume": batch.volume,
        "regular": batch.regular,
    }


def _quote_columns(batch: QuoteBatch) -> dict[str, Any]:
    """A quote batch as the store's columns: bid/ask OHLC split into one column each."""
    cols: dict[str, Any] = {
        "symbol": pa.array(batch.symbol, type=pa.string()),
        "ts": _ts_array(batch.ts_us),
    }
    for side, prices, sizes in (
        ("bid", batch.bid, batch.bid_size),
        ("ask", batch.ask, batch.ask_size),
    ):
        for j, part in enumerate(("open", "high", "low", "close")):
            cols[f"{side}_{part}"] = prices[:, j] if len(prices) else np.empty(0)
        cols[f"{side}_size"] = sizes
    cols["regular"] = batch.regular
    return cols


def _merge_sql(table: str, cols: Sequence[str], keys: Sequence[str] = ("symbol", "ts")) -> str:
    sets = ", ".join(f"{c} = s.{c}" for c in cols)
    names = ", ".join((*keys, *cols))
    values = ", ".join(f"s.{c}" for c in (*keys, *cols))
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    return (
        f"MERGE INTO {table} AS t USING staging AS s ON {on} "
        f"WHEN MATCHED THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


P = ParamSpec("P")
R = TypeVar("R")


def _reads(
    method: Callable[Concatenate[DuckDBStore, P], R],
) -> Callable[Concatenate[DuckDBStore, P], R]:
    """A read that hits a damaged block raises ``StoreCorrupt`` naming the store, not a trace."""

    @functools.wraps(method)
    def wrapper(self: DuckDBStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with schema.store_errors(self.path):
            return method(self, *args, **kwargs)

    return wrapper


class DuckDBStore:
    """A DuckDB file (or ``:memory:``). Each thread gets its own cursor on one database."""

    def __init__(self, path: str | Path, read_only: bool = False, origin: str = "user") -> None:
        """Open ``path``; ``read_only`` never writes (many readers may share the file).

        ``origin`` is who writes through this object: ``"demo"`` for the demo's
        synthetic bars, anything else marks the store as holding user data at the
        first write. Opening for writing creates or migrates the schema
        (:mod:`sessionflow.store.schema`); every failure is a ``StoreError``.
        """
        self.path = str(path)
        self.read_only = read_only
        self.origin = origin
        self._con = schema.connect(self.path, read_only)
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self.meta = schema.prepare(self._con, self.path, read_only, origin, _SCHEMA)
        except BaseException:
            self._con.close()
            raise
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._version = 0

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def _merge(
        self,
        table: str,
        cols: Sequence[str],
        staging: pa.Table,
        keys: Sequence[str] = ("symbol", "ts"),
    ) -> int:
        if staging.num_rows == 0:
            return 0
        with self._write_lock, schema.store_errors(self.path):
            cur = self._cursor()
            cur.register("staging", staging)
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    cur.execute(_merge_sql(table, cols, keys))
                    marked = self.mark_written(cur)
                    cur.execute("COMMIT")
                    self._version += 1
                    if marked:
                        self.meta["user_data"] = "true"
                except BaseException:
                    schema.rollback(cur)
                    raise
            finally:
                cur.unregister("staging")
        return int(staging.num_rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """ONE write transaction on this thread's cursor (``store copy`` streams into it)."""
        with self._write_lock, schema.store_errors(self.path):
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
                marked = self.mark_written(cur)
                cur.execute("COMMIT")
            except BaseException:
                schema.rollback(cur)
                raise
            self._version += 1
            if marked:
                self.meta["user_data"] = "true"

    def mark_written(self, cur: duckdb.DuckDBPyConnection) -> bool:
        """Inside a write transaction: record that user data is being written (once).

        Every write path calls this before its COMMIT, so the demo can tell a store
        it filled itself from one that holds a user's bars. True if it marked now.
        """
        if self.origin == "demo" or self.meta.get("user_data") == "true":
            return False
        schema.mark_user_data(cur)
        return True

    def limit_memory(self, limit: str) -> str:
        """Set DuckDB's buffer pool limit for this database (``SET memory_limit``, such as
        ``"250MB"``); returns the limit it replaces, to put back.

        A read-only scan session by session keeps every block it decompressed cached
        until the limit (by default 80% of RAM): a year of 500 symbols grew past 1 GB.
        Streaming readers (``frames.iter_bars``, ``export bars``) cap it. The setting
        belongs to the database, which every connection to the file in this process
        shares: a reader puts the old limit back when done.
        """
        cur = self._cursor()
        rows = cur.execute("SELECT current_setting('memory_limit')").fetchall()
        cur.execute(f"SET memory_limit = '{limit}'")
        return str(rows[0][0])

    def data_version(self) -> int:
        """Bumped by every committed write through this store object.

        DuckDB lets one process write a file at a time, so an unchanged version
        means nothing new can be found: backtest gap checks then skip the query.
        """
        return self._version

    def upsert_bars(self, batch: BarBatch) -> int:
        """Insert or replace bars by (symbol, ts); one transaction, never a duplicate row."""
        return self._merge("bars_1m", _BAR_COLS, pa.table(_bar_columns(batch)))

    def upsert_quotes(self, batch: QuoteBatch) -> int:
        return self._merge("quotes", _QUOTE_COLS, pa.table(_quote_columns(batch)))

    def load_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> BarBatch:
        """Bars with ``start <= ts < end`` ordered by (ts, symbol)."""
        return self.load_bar_rows(symbols, start, end, regular_only)[1]

    @_reads
    def load_bar_rows(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> tuple[npt.NDArray[np.intp], BarBatch]:
        """Like :meth:`load_bars`, plus each bar's row in ``sorted(set(symbols))``.

        The row comes from a join in DuckDB, so no Python string is made per bar. The
        rows are put in (ts, row) order by numpy, not by an ORDER BY: DuckDB's sort took
        half of a 500-symbol session's read (25 of 50 ms), a lexsort of the two integer
        columns about 10 ms.
        """
        names = sorted(set(symbols))
        where = " AND b.regular" if regular_only else ""
        rows = (
            self._cursor()
            .execute(
                "WITH n AS (SELECT unnest($names) AS symbol, "
                "generate_subscripts($names, 1) - 1 AS row) "
                "SELECT n.row, epoch_us(b.ts) AS ts_us, b.open, b.high, b.low, b.close, b.volume, "
                "b.regular FROM bars_1m b JOIN n USING (symbol) "
                f"WHERE b.ts >= $start AND b.ts < $end{where}",
                {"names": names, "start": start, "end": end},
            )
            .fetchnumpy()
        )
        index = np.asarray(rows["row"], dtype=np.intp)
        ts = np.asarray(rows["ts_us"])
        if not _time_then_row_order(ts, index):
            order = np.lexsort((index, ts))
            rows = {k: np.asarray(v)[order] for k, v in rows.items()}
            index = index[order]
        rows["symbol"] = np.array(names, dtype=object)[index]
        return index, _bar_batch(rows)

    @_reads
    def load_quotes(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> QuoteBatch:
        where = " AND regular" if regular_only else ""
        rows = (
            self._cursor()
            .execute(
                "SELECT symbol, epoch_us(ts) AS ts_us, "
                + ", ".join(_QUOTE_COLS)
                + f" FROM quotes WHERE symbol IN (SELECT unnest(?)) AND ts >= ? AND ts < ?{where} "
                "ORDER BY ts, symbol",
                [list(symbols), start, end],
            )
            .fetchnumpy()
        )
        n = len(rows["ts_us"])
        if n == 0:
            return QuoteBatch.empty()
        bid = np.column_stack(
            [
                np.asarray(rows[f"bid_{p}"], dtype=np.float64)
                for p in ("open", "high", "low", "close")
            ]
        )
        ask = np.column_stack(
            [
                np.asarray(rows[f"ask_{p}"], dtype=np.float64)
                for p in ("open", "high", "low", "close")
            ]
        )
        return QuoteBatch(
            symbol=np.asarray(rows["symbol"], dtype=object),
            ts_us=np.asarray(rows["ts_us"], dtype=np.int64),
            bid=bid,
            bid_size=np.asarray(rows["bid_size"], dtype=np.int64),
            ask=ask,
            ask_size=np.asarray(rows["ask_size"], dtype=np.int64),
            regular=np.asarray(rows["regular"], dtype=np.bool_),
        )

    def upsert_ticks(self, ticks: Sequence[Tick]) -> int:
        """Insert or replace trade prints by (symbol, ts, seq)."""
        table = pa.table(
            {
                "symbol": pa.array([t.symbol for t in ticks], type=pa.string()),
                "ts": _ts_array(np.array([to_us(t.ts) for t in ticks], dtype=np.int64)),
                "seq": pa.array([t.seq for t in ticks], type=pa.int64()),
                "price": pa.array([t.price for t in ticks], type=pa.float64()),
                "size": pa.array([t.size for t in ticks], type=pa.int64()),
            }
        )
        return self._merge("ticks", ("price", "size"), table, keys=("symbol", "ts", "seq"))

    @_reads
    def load_ticks(self, symbols: Sequence[str], start: datetime, end: datetime) -> list[Tick]:
        """Ticks with ``start <= ts < end`` ordered by (ts, symbol, seq)."""
        rows = (
            self._cursor()
            .execute(
                "SELECT symbol, epoch_us(ts), price, size, seq FROM ticks "
                "WHERE symbol IN (SELECT unnest(?)) AND ts >= ? AND ts < ? "
                "ORDER BY ts, symbol, seq",
                [list(symbols), start, end],
            )
            .fetchall()
        )
        return [Tick(str(s), from_us(int(t)), float(p), int(z), int(q)) for s, t, p, z, q in rows]

    @_reads
    def find_bars(self, wanted: Sequence[tuple[str, int]]) -> BarBatch:
        """The stored bars among ``wanted`` (symbol, open in epoch us); used for gap filling."""
        if not wanted:
            return BarBatch.empty()
        keys = pa.table(
            {
                "symbol": pa.array([w[0] for w in wanted], type=pa.string()),
                "ts": _ts_array(np.array([w[1] for w in wanted], dtype=np.int64)),
            }
        )
        cur = self._cursor()
        cur.register("wanted", keys)
        try:
            rows = cur.execute(
                "SELECT b.symbol, epoch_us(b.ts) AS ts_us, b.open, b.high, b.low, b.close, "
                "b.volume, b.regular FROM bars_1m b JOIN wanted w "
                "ON b.symbol = w.symbol AND b.ts = w.ts ORDER BY b.ts, b.symbol"
            ).fetchnumpy()
        finally:
            cur.unregister("wanted")
        return _bar_batch(rows)

    @_reads
    def symbols(self) -> list[str]:
        rows = self._cursor().execute("SELECT DISTINCT symbol FROM bars_1m ORDER BY 1").fetchall()
        return [str(r[0]) for r in rows]

    def count_bars(self) -> int:
        return self._count("bars_1m")

    def count_quotes(self) -> int:
        return self._count("quotes")

    def count_ticks(self) -> int:
        return self._count("ticks")

    @_reads
    def _count(self, table: str) -> int:
        # fetchall, not fetchone: an unfinished result blocks the cursor's next write
        rows = self._cursor().execute(f"SELECT count(*) FROM {table}").fetchall()
        return int(rows[0][0])

    def write_actions(
        self, actions: Sequence[Action], entries: Sequence[MapEntry]
    ) -> dict[tuple[str, str], MergeCounts]:
        """Upsert actions by (symbol, ex_date) and renames by (symbol, until) in one transaction."""
        from sessionflow.store.actions import write_actions

        with self._write_lock, schema.store_errors(self.path):
            counts = write_actions(self._cursor(), actions, entries, self.mark_written)
            self._version += 1
            if self.origin != "demo":
                self.meta["user_data"] = "true"
        return counts

    @_reads
    def load_actions(self, symbols: Sequence[str]) -> list[Action]:
        """Stored actions of ``symbols`` by ex-date; none from a store older than the table."""
        from sessionflow.store.actions import load_actions

        return load_actions(self._cursor(), symbols)

    @_reads
    def last_close_before(self, symbol: str, ts: datetime) -> float | None:
        from sessionflow.store.actions import last_close_before

        return last_close_before(self._cursor(), symbol, ts)

    @_reads
    def load_symbol_map(self, symbols: Sequence[str]) -> list[MapEntry]:
        from sessionflow.store.actions import load_symbol_map

        return load_symbol_map(self._cursor(), symbols)

    @_reads
    def fetched_sessions(self, source: str, symbols: Sequence[str]) -> set[tuple[str, date]]:
        """(symbol, session) pairs a download from ``source`` completed (``fetch_log``)."""
        cur = self._cursor()
        if FETCH_LOG not in schema._tables(cur):
            return set()
        rows = cur.execute(
            f"SELECT symbol, session FROM {FETCH_LOG} WHERE source = ? "
            "AND list_contains(?, symbol)",
            [source, list(symbols)],
        ).fetchall()
        return {(str(s), d) for s, d in rows}

    def record_fetched(self, source: str, done: Sequence[tuple[str, date, int]]) -> None:
        """Mark (symbol, session, rows) complete for ``source``; the table is made on first use."""
        with self.transaction() as cur:
            cur.execute(FETCH_LOG_SQL)
            cur.executemany(
                f"DELETE FROM {FETCH_LOG} WHERE source = ? AND symbol = ? AND session = ?",
                [[source, s, d] for s, d, _ in done],
            )
            cur.executemany(
                f"INSERT INTO {FETCH_LOG} VALUES (?, ?, ?, ?, now())",
                [[source, s, d, n] for s, d, n in done],
            )

    @_reads
    def bar_days(self, tz: str) -> list[tuple[str, date, int, int]]:
        """Per symbol and exchange-local date (zone ``tz``): regular and extended bar counts.

        One grouped query, so an inventory of a large store never loads its bars.
        """
        rows = (
            self._cursor()
            .execute(
                "SELECT symbol, timezone($tz, ts)::DATE AS day, count(*) FILTER (WHERE regular), "
                "count(*) FILTER (WHERE NOT regular) FROM bars_1m GROUP BY ALL ORDER BY 1, 2",
                {"tz": tz},
            )
            .fetchall()
        )
        return [(str(s), d, int(r), int(x)) for s, d, r, x in rows]

    def table_rows(self) -> dict[str, int]:
        """Rows of bars, quotes and ticks; a table an older store lacks counts 0."""
        return {k: self.table_count(t) for k, t in ROW_TABLES.items()}

    @_reads
    def table_count(self, table: str) -> int:
        return self._count(table) if table in schema._tables(self._cursor()) else 0

    @_reads
    def table_symbols(self, table: str) -> list[str]:
        cur = self._cursor()
        if table not in schema._tables(cur):
            return []
        return sorted(
            str(r[0]) for r in cur.execute(f"SELECT DISTINCT symbol FROM {table}").fetchall()
        )

    def stage_import(self) -> DuckDBStagedImport:
        """Hold an import's rows in temporary tables; :meth:`DuckDBStagedImport.merge` writes."""
        from sessionflow.store.duckdb_staging import DuckDBStagedImport

        return DuckDBStagedImport(self)

    def close(self) -> None:
        with schema.store_errors(self.path):  # the checkpoint at close can hit a full disk
            self._con.close()


def _time_then_row_order(ts: npt.NDArray[np.int64], rows: npt.NDArray[np.intp]) -> bool:
    """Whether bars are already ordered by (ts, row) with no (ts, row) twice."""
    if len(ts) < 2:
        return True
    later, same = ts[1:] > ts[:-1], ts[1:] == ts[:-1]
    return bool((later | (same & (rows[1:] > rows[:-1]))).all())


def _bar_batch(rows: dict[str, Any]) -> BarBatch:
    if len(rows["ts_us"]) == 0:
        return BarBatch.empty()
    return BarBatch.from_columns(
        *(rows[c] for c in ("symbol", "ts_us", "open", "high", "low", "close", "volume", "regular"))
    )
