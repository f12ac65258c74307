"""The PostgreSQL and store-copy rounds, on a private PostgreSQL server started for the check.

- store copy: the check store plus corporate actions and a rename is copied DuckDB ->
  DuckDB and DuckDB -> PostgreSQL -> DuckDB with ``copy_store`` (what ``store copy``
  runs). Each copy is then read through the public Store API (``load_bars``,
  ``load_quotes``, ``load_ticks``, ``load_actions``, ``load_symbol_map``), not through
  the copy's own reader, and compared with the source row for row: a copy that loses a
  symbol on both sides of its own checksum still fails here.
- PostgreSQL: the same backtest on the DuckDB store and on its PostgreSQL copy; every
  delivered 1m and derived bar (:mod:`sessionflow.check.digest`) and every report row
  must be equal.

Without PostgreSQL binaries both report "skipped: <reason>" (the copy round still runs
its DuckDB leg), except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Hashable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sessionflow.check.digest import compare
from sessionflow.check.rounds import (
    EngineRun,
    Findings,
    RoundResult,
    RoundSkipped,
    compare_rows,
    engine_run,
    judged,
    report_values,
)
from sessionflow.corporate_actions import Action, MapEntry
from sessionflow.models import from_us, to_us
from sessionflow.store import CommandStore, open_store
from sessionflow.store.copy import copy_store
from sessionflow.testing.postgres import PgServer, pg_server

_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
Rows = dict[Hashable, tuple[Any, ...]]
TABLES = ("bars", "quotes", "ticks", "actions", "renames")


class PrivatePostgres:
    """A server started on first use and stopped with the check; databases on demand.

    Missing binaries are :class:`RoundSkipped` (a reason); a server that does not start
    is an error that fails every round asking for it.
    """

    def __init__(self, stack: contextlib.ExitStack, server: PgServer | None = None) -> None:
        """``server``: one already running (the tests'), else one is started on first use."""
        self._stack = stack
        self._server = server
        self._failure: Exception | None = None

    def new_db(self, prefix: str) -> str:
        if self._failure is not None:
            raise self._failure
        if self._server is None:
            try:
                self._server = self._stack.enter_context(pg_server())
            except FileNotFoundError as exc:
                self._failure = RoundSkipped(f"no PostgreSQL: {exc}")
                raise self._failure from None
            except (RuntimeError, OSError) as exc:
                self._failure = RuntimeError(f"private PostgreSQL did not start: {exc}")
                raise self._failure from None
        return self._server.new_db(prefix)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    with contextlib.ExitStack() as stack:
        yield PrivatePostgres(stack)


def contents(store: CommandStore) -> dict[str, Rows]:
    """Every row of every table, keyed, through the public Store API."""
    syms = sorted({s for t in ("bars_1m", "quotes", "ticks", "corporate_actions", "symbol_map")
                   for s in store.table_symbols(t)})  # fmt: skip
    b = store.load_bars(syms, *_ALL_TIME, regular_only=False)
    q = store.load_quotes(syms, *_ALL_TIME, regular_only=False)
    bars: Rows = {
        (s, _at(ts)): tuple(row)
        for s, ts, *row in zip(
            b.symbol.tolist(), b.ts_us.tolist(), b.open.tolist(), b.high.tolist(),
            b.low.tolist(), b.close.tolist(), b.volume.tolist(), b.regular.tolist(), strict=True,
        )
    }  # fmt: skip
    quotes: Rows = {
        (s, _at(ts)): (*bid, bs, *ask, asz, reg)
        for s, ts, bid, bs, ask, asz, reg in zip(
            q.symbol.tolist(), q.ts_us.tolist(), q.bid.tolist(), q.bid_size.tolist(),
            q.ask.tolist(), q.ask_size.tolist(), q.regular.tolist(), strict=True,
        )
    }  # fmt: skip
    ticks: Rows = {(t.symbol, _at(to_us(t.ts)), t.seq): (t.price, t.size)
                   for t in store.load_ticks(syms, *_ALL_TIME)}  # fmt: skip
    actions: Rows = {(a.symbol, a.ex_date): (a.split, a.dividend, a.dividend_factor)
                     for a in store.load_actions(syms)}  # fmt: skip
    renames: Rows = {(e.symbol, e.until): (e.ticker,) for e in store.load_symbol_map(syms)}
    return dict(zip(TABLES, (bars, quotes, ticks, actions, renames), strict=True))


def _at(ts_us: int) -> str:
    return f"{from_us(ts_us):%Y-%m-%d %H:%M:%S.%fZ}"


def _read(name: str | Path) -> dict[str, Rows]:
    store = open_store(name, read_only=True)
    try:
        return contents(store)
    finally:
        store.close()


def _copy(source: str | Path, destination: str | Path) -> bool:
    """``store copy SOURCE DESTINATION``; whether its own check found both sides equal."""
    src = open_store(source, read_only=True)
    try:
        dst = open_store(destination)
        try:
            return copy_store(src, dst).equal
        finally:
            dst.close()
    finally:
        src.close()


def copy_source(check_store: Path, path: Path) -> Path:
    """The check store (bars, extended hours, quotes, ticks) plus actions and a rename."""
    shutil.copyfile(check_store, path)
    store = open_store(path)
    try:
        store.write_actions(
            [Action("AAA", date(2024, 11, 29), 2.0, 0.0, 1.0),
             Action("BBB", date(2024, 12, 2), 1.0, 0.37, 0.9931234567891234)],
            [MapEntry("CCC", date(2024, 11, 27), "OLDC")],
        )  # fmt: skip
    finally:
        store.close()
    return path


def run_copy_round(workdir: Path, check_store: Path, pg: PrivatePostgres) -> RoundResult:
    workdir.mkdir(parents=True, exist_ok=True)

    def body(found: Findings) -> None:
        src = copy_source(check_store, workdir / "copy_src.duckdb")
        want = _read(src)
        legs: list[tuple[str, str | Path, str | Path]] = [
            ("DuckDB -> DuckDB", src, workdir / "copy_dst.duckdb")
        ]
        try:
            url = pg.new_db("sf_copy")
            legs += [("DuckDB -> PostgreSQL", src, url),
                     ("PostgreSQL -> DuckDB", url, workdir / "copy_back.duckdb")]  # fmt: skip
        except RoundSkipped as exc:
            found.saw(f"PostgreSQL legs skipped: {exc}")
            if os.environ.get("CI") == "true":
                found.differ([f"required under CI=true: {exc}"])
        for name, source, destination in legs:
            said_equal = _copy(source, destination)
            got = _read(destination)
            for table in TABLES:
                found.differ(compare_rows(f"{name} {table}", got[table], want[table]))
            if not said_equal:
                found.differ([f"{name}: store copy's own check says the checksums differ"])
        sizes = ", ".join(f"{len(want[t])} {t}" for t in TABLES)
        found.compared.insert(
            0, f"{' and '.join(n for n, _, _ in legs)}: {sizes}, row for row vs the source"
        )

    return judged("store copy", body)


def run_postgres_round(
    check_store: Path,
    symbols: list[str],
    start: date,
    end: date,
    reference: Callable[[], EngineRun],
    pg: PrivatePostgres,
) -> RoundResult:
    """``reference``: the same backtest (default settings) on the DuckDB store."""

    def body(found: Findings) -> None:
        duck = reference()
        url = pg.new_db("sf_check")
        if not _copy(check_store, url):
            found.differ(["store copy to PostgreSQL: its own check says the checksums differ"])
        there = engine_run(url, symbols, start, end)
        found.differ(compare(duck.digest, there.digest))
        want = report_values(duck.reports)
        found.differ(compare_rows("session reports", report_values(there.reports), want))
        n = sum(len(v) for v in duck.digest.series.values())
        found.saw(
            f"a backtest on the PostgreSQL copy vs on DuckDB: {n} delivered 1m/5m/15m bars and "
            f"{sum(len(r.rows) for r in duck.reports)} report rows (every field) and each "
            "session's actions"
        )

    return judged("PostgreSQL", body)
