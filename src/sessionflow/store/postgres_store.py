"""A PostgreSQL server store: many processes read and write one database at once.

Why: one DuckDB file admits one writing process and no reader beside it, so a live
session writing all day shuts out research on the same data. PostgreSQL's MVCC
lets a live writer, imports, backtests and reports share one database; each write
is one transaction (``INSERT ... ON CONFLICT`` on the primary key, so never a
duplicate), and readers see a write entirely or not at all.

Bulk rows travel as binary COPY built with numpy (:mod:`postgres_binary`) into a
temporary table, then one upsert joins the symbol names back. Each thread gets its
own connection (a connection runs one transaction at a time).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import TupleRow

from sessionflow.models import Tick, from_us, to_us
from sessionflow.store import postgres_binary as binary
from sessionflow.store import postgres_schema as schema
from sessionflow.store.base import (
    FETCH_LOG,
    FETCH_LOG_SQL,
    ROW_TABLES,
    BarBatch,
    MergeCounts,
    QuoteBatch,
    StoreWriteError,
)
from sessionflow.store.errors import StoreUnreachable
from sessionflow.store.schema import META_TABLE

if TYPE_CHECKING:
    from sessionflow.corporate_actions import Action, MapEntry
    from sessionflow.store.postgres_staging import PostgresStagedImport

Con = psycopg.Connection[TupleRow]
T = TypeVar("T")
_US = "(extract(epoch FROM {}) * 1000000)::int8"


@dataclass(frozen=True)
class Spec:
    """A data table: key columns after (symbol, ts), value columns, their PostgreSQL types."""

    table: str
    extra_keys: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, str], ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return ("symbol", "ts", *(k for k, _ in self.extra_keys))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.values)

    @property
    def raw_types(self) -> tuple[tuple[str, str], ...]:
        """The binary COPY row: symbol index, position, ts, extra keys, values."""
        return (("row", "int4"), ("i", "int4"), ("ts", "timestamptz"), *self.extra_keys,
                *self.values)  # fmt: skip


_F, _I, _B = "float8", "int8", "bool"
BARS = Spec("bars_1m", (), (("open", _F), ("high", _F), ("low", _F), ("close", _F),
                            ("volume", _I), ("regular", _B)))  # fmt: skip
_SIDES = tuple(
    (f"{s}_{p}", _F if p != "size" else _I)
    for s in ("bid", "ask")
    for p in ("open", "high", "low", "close", "size")
)
QUOTES = Spec("quotes", (), (*_SIDES, ("regular", _B)))
TICKS = Spec("ticks", (("seq", _I),), (("price", _F), ("size", _I)))
SPECS = {s.table: s for s in (BARS, QUOTES, TICKS)}


def symbol_rows(symbols: npt.NDArray[np.object_]) -> tuple[list[str], npt.NDArray[np.int32]]:
    """Distinct names and each row's index among them (what the binary rows carry)."""
    if not len(symbols):
        return [], np.empty(0, dtype=np.int32)
    if (symbols == None).any():  # noqa: E711 (elementwise on an object array)
        raise StoreWriteError("symbol violates NOT NULL: a row has no symbol; nothing was written")
    names, index = np.unique(symbols.astype(str), return_inverse=True)
    return [str(s) for s in names], index.astype(np.int32)


def bar_columns(batch: BarBatch) -> tuple[list[str], dict[str, Any]]:
    names, rows = symbol_rows(batch.symbol)
    cols = {c: getattr(batch, c) for c in BARS.columns}
    return names, {"row": rows, "ts": batch.ts_us, **cols}


def quote_columns(batch: QuoteBatch) -> tuple[list[str], dict[str, Any]]:
    names, rows = symbol_rows(batch.symbol)
    cols: dict[str, Any] = {"row": rows, "ts": batch.ts_us, "regular": batch.regular}
    for side, prices, sizes in (("bid", batch.bid, batch.bid_size),
                                ("ask", batch.ask, batch.ask_size)):  # fmt: skip
        for j, part in enumerate(("open", "high", "low", "close")):
            cols[f"{side}_{part}"] = prices[:, j] if len(prices) else np.empty(0)
        cols[f"{side}_size"] = sizes
    return names, cols


def tick_columns(ticks: Sequence[Tick]) -> tuple[list[str], dict[str, Any]]:
    names, rows = symbol_rows(np.array([t.symbol for t in ticks], dtype=object))
    return names, {
        "row": rows,
        "ts": np.array([to_us(t.ts) for t in ticks], dtype=np.int64),
        "seq": np.array([t.seq for t in ticks], dtype=np.int64),
        "price": np.array([t.price for t in ticks], dtype=np.float64),
        "size": np.array([t.size for t in ticks], dtype=np.int64),
    }


def copy_raw(con: Con, types: Sequence[tuple[str, str]], raw: str, cols: dict[str, Any]) -> None:
    """Binary-COPY ``cols`` (plus ``i``, the row's position) into the temporary table ``raw``."""
    cols = {**cols, "i": np.arange(len(cols["ts"]), dtype=np.int32)}
    ddl = ", ".join(f"{c} {t}" for c, t in types)
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {raw} ({ddl})")
    with con.cursor() as cur, cur.copy(f"COPY {raw} FROM STDIN (FORMAT binary)") as cp:
        cp.write(binary.encode(types, cols))


def named_rows(spec: Spec, raw: str) -> str:
    """SELECT of ``raw``'s rows with their symbol names joined back."""
    rest = ", ".join(f"r.{c}" for c in (*spec.keys[1:], *spec.columns))
    return (
        f"SELECT n.symbol, {rest} FROM {raw} r "
        "JOIN unnest(%(names)s::text[]) WITH ORDINALITY n(symbol, row) ON n.row = r.row + 1"
    )


def last_per_key(spec: Spec, cols: dict[str, Any]) -> dict[str, Any]:
    """The rows in key order, a key given twice keeping its last row (as upserts in turn would).

    ``INSERT ... ON CONFLICT`` refuses to touch one row twice in a statement; key order
    also makes concurrent writers lock rows in the same order (no deadlock between them).
    """
    n = len(cols["ts"])
    keys = [cols["row"], cols["ts"], *(cols[k] for k, _ in spec.extra_keys)]
    order = np.lexsort((np.arange(n), *reversed(keys)))
    last = np.ones(n, dtype=np.bool_)
    if n > 1:
        same = np.ones(n - 1, dtype=np.bool_)
        for k in keys:
            ks = np.asarray(k)[order]
            same &= ks[1:] == ks[:-1]
        last[:-1] = ~same
    keep = order[last]
    return {name: np.asarray(col)[keep] for name, col in cols.items()}


def upsert_sql(spec: Spec, source: str, keep: bool = False) -> str:
    names = ", ".join((*spec.keys, *spec.columns))
    action = (
        "NOTHING"
        if keep
        else "UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in spec.columns)
    )
    return (
        f"INSERT INTO {spec.table} ({names}) SELECT {names} FROM ({source}) s "
        f"ON CONFLICT ({', '.join(spec.keys)}) DO {action}"
    )


def fetch_rows(con: Con, sql: str, params: dict[str, Any], types: Any) -> dict[str, Any]:
    """``sql``'s fixed-width rows (columns named as ``types``) as numpy columns, unordered."""
    row = con.execute(binary.pack_sql(types, sql), params, binary=True).fetchone()
    return binary.unpack(types, bytes(row[0]) if row and row[0] is not None else None)


def by_time(cols: dict[str, Any]) -> dict[str, Any]:
    """Rows by (ts, symbol row), sorted here: cheaper than a server sort spilling to disk."""
    order = np.lexsort((cols["row"], cols["ts"]))
    return {name: col[order] for name, col in cols.items()}


class PostgresStore:
    """A sessionflow store in a PostgreSQL database named by a ``postgresql://`` URL."""

    def __init__(self, url: str, read_only: bool = False, origin: str = "user") -> None:
        """Connect and check (writers: create or migrate) the schema; failures are StoreErrors.

        ``url`` may carry no password: give it in PGPASSWORD or ~/.pgpass. ``path``
        is the URL without a password, for messages.
        """
        self._url = url
        self.path = schema.redact(url)
        self.read_only = read_only
        self.origin = origin
        self._local = threading.local()
        self._cons: list[Con] = []
        self._cons_lock = threading.Lock()
        try:
            self.meta = schema.prepare(self._con(), url, read_only, origin)
        except BaseException:
            self.close()
            raise

    def _con(self) -> Con:
        con: Con | None = getattr(self._local, "con", None)
        if con is None or con.closed:
            con = schema.connect(self._url, self.read_only)
            with self._cons_lock:
                self._cons.append(con)
            self._local.con = con
        return con

    def _read(self, work: Callable[[Con], T]) -> T:
        """A connection the server dropped (restart, idle kill) is replaced once: reads repeat."""
        con = self._con()
        try:
            with schema.store_errors(self._url):
                return work(con)
        except StoreUnreachable:
            if not con.closed:
                raise
        with schema.store_errors(self._url):
            return work(self._con())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Con]:
        """ONE write transaction, ending with the version bump; rolled back on any failure."""
        con = self._con()
        marked = False
        try:
            with schema.store_errors(self._url), con.transaction():
                yield con
                marked = self._mark(con)
                con.execute(  # last, so the row lock is held for the shortest time
                    f"UPDATE {META_TABLE} SET value = (value::int8 + 1)::text "
                    "WHERE key = 'data_version'"
                )
        except psycopg.Error as exc:
            raise StoreWriteError(
                f"writing {self.path} failed: {exc}; rolled back, nothing was written"
            ) from exc
        if marked:
            self.meta["user_data"] = "true"

    def write(self, work: Callable[[Con], T]) -> T:
        """Run ``work`` in one :meth:`transaction`."""
        with self.transaction() as con:
            return work(con)

    def _mark(self, con: Con) -> bool:
        if self.origin == "demo" or self.meta.get("user_data") == "true":
            return False
        con.execute(f"UPDATE {META_TABLE} SET value = 'true' WHERE key = 'user_data'")
        return True

    def data_version(self) -> int:
        """The database's write counter: changes when any process commits a write."""

        def get(con: Con) -> int:
            row = con.execute(
                f"SELECT value FROM {META_TABLE} WHERE key = 'data_version'"
            ).fetchone()
            return int(str(row[0])) if row else 0

        return self._read(get)

    def _upsert(self, spec: Spec, names: list[str], cols: dict[str, Any]) -> int:
        n = len(cols["ts"])
        if n == 0:
            return 0
        raw = f"sf_raw_{spec.table}"

        def work(con: Con) -> None:
            con.execute(f"DROP TABLE IF EXISTS {raw}")
            copy_raw(con, spec.raw_types, raw, last_per_key(spec, cols))
            con.execute(upsert_sql(spec, named_rows(spec, raw)), {"names": names})
            con.execute(f"DROP TABLE {raw}")

        self.write(work)
        return n

    def upsert_bars(self, batch: BarBatch) -> int:
        """Insert or replace bars by (symbol, ts); one transaction, never a duplicate row."""
        return self._upsert(BARS, *bar_columns(batch))

    def upsert_quotes(self, batch: QuoteBatch) -> int:
        return self._upsert(QUOTES, *quote_columns(batch))

    def upsert_ticks(self, ticks: Sequence[Tick]) -> int:
        """Insert or replace trade prints by (symbol, ts, seq)."""
        return self._upsert(TICKS, *tick_columns(ticks))

    def load_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> BarBatch:
        """Bars with ``start <= ts < end`` ordered by (ts, symbol)."""
        return self.load_bar_rows(symbols, start, end, regular_only)[1]

    def load_bar_rows(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> tuple[npt.NDArray[np.intp], BarBatch]:
        """Like :meth:`load_bars`, plus each bar's row in ``sorted(set(symbols))``."""
        names = sorted(set(symbols))
        where = " AND b.regular" if regular_only else ""
        sql = (
            "SELECT (n.row - 1)::int4 AS row, b.ts, b.open, b.high, b.low, b.close, b.volume, "
            "b.regular "
            "FROM bars_1m b JOIN unnest(%(names)s::text[]) WITH ORDINALITY n(symbol, row) "
            f"USING (symbol) WHERE b.ts >= %(start)s AND b.ts < %(end)s{where}"
        )
        types = (("row", "int4"), ("ts", "timestamptz"), *BARS.values)
        params = {"names": names, "start": start, "end": end}
        rows = by_time(self._read(lambda con: fetch_rows(con, sql, params, types)))
        index = rows["row"].astype(np.intp)
        if not len(index):
            return index, BarBatch.empty()
        symbol = np.array(names, dtype=object)[index]
        batch = BarBatch.from_columns(symbol, *(rows[c] for c in ("ts", *BARS.columns)))
        return index, batch

    def load_quotes(
        self, symbols: Sequence[str], start: datetime, end: datetime, regular_only: bool = True
    ) -> QuoteBatch:
        names = sorted(set(symbols))
        where = " AND q.regular" if regular_only else ""
        sql = (
            "SELECT (n.row - 1)::int4 AS row, q.ts, "
            + ", ".join(f"q.{c}" for c in QUOTES.columns)
            + " FROM quotes q JOIN unnest(%(names)s::text[]) WITH ORDINALITY n(symbol, row) "
            f"USING (symbol) WHERE q.ts >= %(start)s AND q.ts < %(end)s{where}"
        )
        types = (("row", "int4"), ("ts", "timestamptz"), *QUOTES.values)
        params = {"names": names, "start": start, "end": end}
        rows = by_time(self._read(lambda con: fetch_rows(con, sql, params, types)))
        if not len(rows["ts"]):
            return QuoteBatch.empty()
        side = {
            s: np.column_stack([rows[f"{s}_{p}"] for p in ("open", "high", "low", "close")])
            for s in ("bid", "ask")
        }
        return QuoteBatch(
            symbol=np.array(names, dtype=object)[rows["row"].astype(np.intp)],
            ts_us=rows["ts"].astype(np.int64),
            bid=side["bid"].astype(np.float64),
            bid_size=rows["bid_size"].astype(np.int64),
            ask=side["ask"].astype(np.float64),
            ask_size=rows["ask_size"].astype(np.int64),
            regular=rows["regular"].astype(np.bool_),
        )

    def load_ticks(self, symbols: Sequence[str], start: datetime, end: datetime) -> list[Tick]:
        """Ticks with ``start <= ts < end`` ordered by (ts, symbol, seq)."""
        sql = (
            f"SELECT symbol, {_US.format('ts')}, price, size, seq FROM ticks "
            'WHERE symbol = ANY(%s) AND ts >= %s AND ts < %s ORDER BY ts, symbol COLLATE "C", seq'
        )
        rows = self._read(lambda con: con.execute(sql, [list(symbols), start, end]).fetchall())
        return [Tick(str(s), from_us(int(t)), float(p), int(z), int(q)) for s, t, p, z, q in rows]

    def find_bars(self, wanted: Sequence[tuple[str, int]]) -> BarBatch:
        """The stored bars among ``wanted`` (symbol, open in epoch us); used for gap filling."""
        if not wanted:
            return BarBatch.empty()
        sql = (
            f"SELECT b.symbol, {_US.format('b.ts')}, b.open, b.high, b.low, b.close, b.volume, "
            "b.regular FROM bars_1m b JOIN (SELECT unnest(%s::text[]) AS symbol, "
            "timestamptz 'epoch' + unnest(%s::int8[]) * interval '1 microsecond' AS ts) w "
            'USING (symbol, ts) ORDER BY b.ts, b.symbol COLLATE "C"'
        )
        params = [[w[0] for w in wanted], [int(w[1]) for w in wanted]]
        rows = self._read(lambda con: con.execute(sql, params).fetchall())
        if not rows:
            return BarBatch.empty()
        return BarBatch.from_columns(*zip(*rows, strict=True))

    def symbols(self) -> list[str]:
        """Distinct symbols by a skip scan of the primary key (fast on a large table)."""
        sql = (
            "WITH RECURSIVE s AS (SELECT min(symbol) AS symbol FROM bars_1m UNION ALL "
            "SELECT (SELECT min(symbol) FROM bars_1m WHERE symbol > s.symbol) FROM s "
            "WHERE s.symbol IS NOT NULL) SELECT symbol FROM s WHERE symbol IS NOT NULL"
        )
        return sorted(str(r[0]) for r in self._read(lambda con: con.execute(sql).fetchall()))

    def count_bars(self) -> int:
        return self._count("bars_1m")

    def count_quotes(self) -> int:
        return self._count("quotes")

    def count_ticks(self) -> int:
        return self._count("ticks")

    def _count(self, table: str) -> int:
        row = self._read(lambda con: con.execute(f"SELECT count(*) FROM {table}").fetchone())
        return int(row[0]) if row else 0

    def table_rows(self) -> dict[str, int]:
        """Rows of bars, quotes and ticks; a table an older store lacks counts 0."""
        return {k: self.table_count(t) for k, t in ROW_TABLES.items()}

    def _has(self, table: str) -> bool:
        sql = "SELECT to_regclass(%s) IS NOT NULL"
        row = self._read(lambda con: con.execute(sql, [table]).fetchone())
        return bool(row and row[0])

    def table_count(self, table: str) -> int:
        return self._count(table) if self._has(table) else 0

    def table_symbols(self, table: str) -> list[str]:
        if not self._has(table):
            return []
        sql = f"SELECT DISTINCT symbol FROM {table}"
        return sorted(str(r[0]) for r in self._read(lambda con: con.execute(sql).fetchall()))

    def fetched_sessions(self, source: str, symbols: Sequence[str]) -> set[tuple[str, date]]:
        """(symbol, session) pairs a download from ``source`` completed (``fetch_log``)."""

        def get(con: Con) -> list[tuple[Any, ...]]:
            if con.execute("SELECT to_regclass(%s)", [FETCH_LOG]).fetchone() == (None,):
                return []
            return con.execute(
                f"SELECT symbol, session FROM {FETCH_LOG} WHERE source = %s AND symbol = ANY(%s)",
                [source, list(symbols)],
            ).fetchall()

        return {(str(s), d) for s, d in self._read(get)}

    def record_fetched(self, source: str, done: Sequence[tuple[str, date, int]]) -> None:
        """Mark (symbol, session, rows) complete for ``source``; the table is made on first use."""

        def work(con: Con) -> None:
            con.execute(FETCH_LOG_SQL.replace("VARCHAR", "text"))
            with con.cursor() as cur:
                cur.executemany(
                    f"DELETE FROM {FETCH_LOG} WHERE source = %s AND symbol = %s AND session = %s",
                    [[source, s, d] for s, d, _ in done],
                )
                cur.executemany(
                    f"INSERT INTO {FETCH_LOG} VALUES (%s, %s, %s, %s, now())",
                    [[source, s, d, n] for s, d, n in done],
                )

        self.write(work)

    def bar_days(self, tz: str) -> list[tuple[str, date, int, int]]:
        """Per symbol and exchange-local date: regular and extended bar counts (one query)."""
        sql = (
            "SELECT symbol, (ts AT TIME ZONE %s)::date AS day, count(*) FILTER (WHERE regular), "
            "count(*) FILTER (WHERE NOT regular) FROM bars_1m GROUP BY 1, 2 "
            'ORDER BY symbol COLLATE "C", 2'
        )
        rows = self._read(lambda con: con.execute(sql, [tz]).fetchall())
        return [(str(s), d, int(r), int(x)) for s, d, r, x in rows]

    def write_actions(
        self, actions: Sequence[Action], entries: Sequence[MapEntry]
    ) -> dict[tuple[str, str], MergeCounts]:
        """Upsert actions by (symbol, ex_date) and renames by (symbol, until) in one transaction."""
        from sessionflow.store.postgres_actions import write_actions

        return self.write(lambda con: write_actions(con, actions, entries))

    def load_actions(self, symbols: Sequence[str]) -> list[Action]:
        from sessionflow.store.postgres_actions import load_actions

        return self._read(lambda con: load_actions(con, symbols))

    def load_symbol_map(self, symbols: Sequence[str]) -> list[MapEntry]:
        from sessionflow.store.postgres_actions import load_symbol_map

        return self._read(lambda con: load_symbol_map(con, symbols))

    def last_close_before(self, symbol: str, ts: datetime) -> float | None:
        sql = (
            "SELECT close FROM bars_1m WHERE symbol = %s AND ts < %s AND regular "
            "ORDER BY ts DESC LIMIT 1"
        )
        row = self._read(lambda con: con.execute(sql, [symbol, ts]).fetchone())
        return float(row[0]) if row else None

    def stage_import(self) -> PostgresStagedImport:
        """Hold an import's rows in temporary tables; :meth:`PostgresStagedImport.merge` writes."""
        from sessionflow.store.postgres_staging import PostgresStagedImport

        return PostgresStagedImport(self)

    def close(self) -> None:
        with self._cons_lock:
            cons, self._cons = self._cons, []
        for con in cons:
            con.close()
