"""Corporate actions and renames in a DuckDB store: upserts with counts, and reads.

Tables came with schema 2; a read-only reader of an older store finds none and so
sees no actions (its history stays raw) rather than failing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import duckdb

from sessionflow.corporate_actions.adjust import Action, MapEntry
from sessionflow.store import schema
from sessionflow.store.base import MergeCounts


def _has(cur: duckdb.DuckDBPyConnection, table: str) -> bool:
    return table in schema._tables(cur)


def write_actions(
    cur: duckdb.DuckDBPyConnection,
    actions: Sequence[Action],
    entries: Sequence[MapEntry],
    mark: Callable[[duckdb.DuckDBPyConnection], bool],
) -> dict[tuple[str, str], MergeCounts]:
    """One transaction; counts rows new, unchanged and replaced per (table, symbol)."""
    counts: dict[tuple[str, str], MergeCounts] = {}
    cur.execute("BEGIN TRANSACTION")
    try:
        for a in actions:
            old = cur.execute(
                "SELECT split, dividend, dividend_factor FROM corporate_actions "
                "WHERE symbol = ? AND ex_date = ?",
                [a.symbol, a.ex_date],
            ).fetchall()
            values = (a.split, a.dividend, a.dividend_factor)
            c = counts.setdefault(("actions", a.symbol), MergeCounts())
            if not old:
                c.new += 1
                cur.execute(
                    "INSERT INTO corporate_actions VALUES (?, ?, ?, ?, ?)",
                    [a.symbol, a.ex_date, *values],
                )
            elif all(
                abs(float(x) - y) <= 1e-12 * max(1.0, abs(y))
                for x, y in zip(old[0], values, strict=True)
            ):
                c.unchanged += 1
            else:
                c.replaced += 1
                cur.execute(
                    "UPDATE corporate_actions SET split = ?, dividend = ?, dividend_factor = ? "
                    "WHERE symbol = ? AND ex_date = ?",
                    [*values, a.symbol, a.ex_date],
                )
        for e in entries:
            old = cur.execute(
                "SELECT ticker FROM symbol_map WHERE symbol = ? AND until = ?", [e.symbol, e.until]
            ).fetchall()
            c = counts.setdefault(("map", e.symbol), MergeCounts())
            if not old:
                c.new += 1
                cur.execute(
                    "INSERT INTO symbol_map VALUES (?, ?, ?)", [e.symbol, e.until, e.ticker]
                )
            elif str(old[0][0]) == e.ticker:
                c.unchanged += 1
            else:
                c.replaced += 1
                cur.execute(
                    "UPDATE symbol_map SET ticker = ? WHERE symbol = ? AND until = ?",
                    [e.ticker, e.symbol, e.until],
                )
        mark(cur)
        cur.execute("COMMIT")
    except BaseException:
        schema.rollback(cur)
        raise
    return counts


def load_actions(cur: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> list[Action]:
    if not _has(cur, "corporate_actions"):
        return []
    rows = cur.execute(
        "SELECT symbol, ex_date, split, dividend, dividend_factor FROM corporate_actions "
        "WHERE symbol IN (SELECT unnest(?)) ORDER BY ex_date, symbol",
        [list(symbols)],
    ).fetchall()
    return [Action(str(s), d, float(x), float(c), float(f)) for s, d, x, c, f in rows]


def load_symbol_map(cur: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> list[MapEntry]:
    if not _has(cur, "symbol_map"):
        return []
    rows = cur.execute(
        "SELECT symbol, until, ticker FROM symbol_map WHERE symbol IN (SELECT unnest(?)) "
        "ORDER BY symbol, until",
        [list(symbols)],
    ).fetchall()
    return [MapEntry(str(s), d, str(t)) for s, d, t in rows]


def last_close_before(cur: duckdb.DuckDBPyConnection, symbol: str, ts: datetime) -> float | None:
    """The close of ``symbol``'s last regular bar opening before ``ts`` (a dividend's reference)."""
    rows = cur.execute(
        "SELECT close FROM bars_1m WHERE symbol = ? AND ts < ? AND regular "
        "ORDER BY ts DESC LIMIT 1",
        [symbol, ts],
    ).fetchall()
    return float(rows[0][0]) if rows else None
