"""Corporate actions and renames in a PostgreSQL store: the same counts as the DuckDB store.

Called inside :meth:`PostgresStore.write`'s transaction; rows are few (one per
split, dividend or rename), so plain statements do.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.rows import TupleRow

from sessionflow.corporate_actions.adjust import Action, MapEntry
from sessionflow.store.base import MergeCounts

Con = psycopg.Connection[TupleRow]


def _same(old: Sequence[object], new: Sequence[float]) -> bool:
    return all(
        abs(float(str(x)) - y) <= 1e-12 * max(1.0, abs(y)) for x, y in zip(old, new, strict=True)
    )


def write_actions(
    con: Con, actions: Sequence[Action], entries: Sequence[MapEntry]
) -> dict[tuple[str, str], MergeCounts]:
    """Counts rows new, unchanged and replaced per (table, symbol)."""
    counts: dict[tuple[str, str], MergeCounts] = {}
    for a in actions:
        old = con.execute(
            "SELECT split, dividend, dividend_factor FROM corporate_actions "
            "WHERE symbol = %s AND ex_date = %s FOR UPDATE",
            [a.symbol, a.ex_date],
        ).fetchone()
        values = (a.split, a.dividend, a.dividend_factor)
        c = counts.setdefault(("actions", a.symbol), MergeCounts())
        if old is not None and _same(old, values):
            c.unchanged += 1
            continue
        if old is None:
            c.new += 1
        else:
            c.replaced += 1
        con.execute(
            "INSERT INTO corporate_actions VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (symbol, ex_date) DO UPDATE SET split = EXCLUDED.split, "
            "dividend = EXCLUDED.dividend, dividend_factor = EXCLUDED.dividend_factor",
            [a.symbol, a.ex_date, *values],
        )
    for e in entries:
        row = con.execute(
            "SELECT ticker FROM symbol_map WHERE symbol = %s AND until = %s FOR UPDATE",
            [e.symbol, e.until],
        ).fetchone()
        c = counts.setdefault(("map", e.symbol), MergeCounts())
        if row is not None and str(row[0]) == e.ticker:
            c.unchanged += 1
            continue
        if row is None:
            c.new += 1
        else:
            c.replaced += 1
        con.execute(
            "INSERT INTO symbol_map VALUES (%s, %s, %s) "
            "ON CONFLICT (symbol, until) DO UPDATE SET ticker = EXCLUDED.ticker",
            [e.symbol, e.until, e.ticker],
        )
    return counts


def load_actions(con: Con, symbols: Sequence[str]) -> list[Action]:
    rows = con.execute(
        "SELECT symbol, ex_date, split, dividend, dividend_factor FROM corporate_actions "
        'WHERE symbol = ANY(%s) ORDER BY ex_date, symbol COLLATE "C"',
        [list(symbols)],
    ).fetchall()
    return [Action(str(s), d, float(x), float(c), float(f)) for s, d, x, c, f in rows]


def load_symbol_map(con: Con, symbols: Sequence[str]) -> list[MapEntry]:
    rows = con.execute(
        "SELECT symbol, until, ticker FROM symbol_map WHERE symbol = ANY(%s) "
        'ORDER BY symbol COLLATE "C", until',
        [list(symbols)],
    ).fetchall()
    return [MapEntry(str(s), d, str(t)) for s, d, t in rows]
