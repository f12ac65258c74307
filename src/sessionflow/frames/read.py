"""``read_bars`` and ``iter_bars``: the bars a backtest delivers, as DataFrames.

The bars come from ``export.export_chunks``, the engine's own code for a past session
(the session grid, ``derive_grid``, the as-of adjustment), so a frame holds exactly
what a backtest holds: sessions from the exchange calendar, k-minute windows aligned
to the session open with a short last window (``minutes`` says how long), no bar for
a window without any 1m bar, early closes where the calendar puts them, and no
extended-hours bars. Each session becomes one Arrow table column by column; pandas or
polars take it from there (``frames.backend``). ``iter_bars`` yields one session at a
time, so memory is one session's bars whatever the range.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from sessionflow.corporate_actions.adjust import check_mode
from sessionflow.export.bars import (
    SCHEMA,
    bound_cache,
    chunk_table,
    export_chunks,
    parse_interval,
)
from sessionflow.frames.backend import check_backend, to_frame
from sessionflow.models import normalize_symbol
from sessionflow.store import Store
from sessionflow.store.open import open_store
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

StoreArg = Store | str | Path
DateArg = date | str


class ReadError(ValueError):
    """A read that cannot start: no session in the range, or symbols the store lacks."""

    NO_SESSIONS = "no {calendar} sessions between {start} and {end}"
    UNKNOWN = "symbols not in the store {store}: {symbols}"


def _day(value: DateArg) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _minutes(interval: str | int) -> int:
    return parse_interval(f"{interval}m" if isinstance(interval, int) else interval)


def _sessions(calendar: str | ExchangeCalendar, start: DateArg, end: DateArg) -> list[SessionInfo]:
    cal = calendar if isinstance(calendar, ExchangeCalendar) else ExchangeCalendar(calendar)
    first, last = _day(start), _day(end)
    sessions = cal.sessions(first, last)
    if not sessions:
        raise ReadError(ReadError.NO_SESSIONS.format(calendar=cal.name, start=first, end=last))
    return sessions


def _names(store: Store, symbols: Sequence[str] | str | None, label: str) -> list[str]:
    stored = store.symbols()
    if symbols is None:
        return stored
    wanted = [symbols] if isinstance(symbols, str) else list(symbols)
    names = [normalize_symbol(s) for s in wanted]
    known = set(stored)
    unknown = [s for s in names if s not in known]
    if unknown or not names:
        raise ReadError(ReadError.UNKNOWN.format(store=label, symbols=", ".join(unknown) or "none"))
    return names


def iter_tables(
    store: StoreArg,
    symbols: Sequence[str] | str | None,
    start: DateArg,
    end: DateArg,
    interval: str | int = "1m",
    adjustment: str = "split",
    as_of: DateArg | None = None,
    calendar: str | ExchangeCalendar = "XNYS",
) -> Iterator[pa.Table]:
    """One Arrow table per session (``export.bars.SCHEMA``), in session order.

    Arguments are checked before the first table is asked for: a bad interval,
    adjustment, range or symbol raises at the call, not at the first ``next``.
    """
    minutes = _minutes(interval)
    mode = check_mode(adjustment)
    sessions = _sessions(calendar, start, end)
    # as of the last session by default: the history a backtest holds on that day
    day = None if mode == "raw" else (_day(as_of) if as_of is not None else sessions[-1].date)
    owned = isinstance(store, (str, Path))
    db: Store = open_store(store, read_only=True) if isinstance(store, (str, Path)) else store
    try:
        names = _names(db, symbols, str(store) if owned else getattr(db, "path", "given"))
    except BaseException:
        if owned:
            db.close()
        raise
    return _tables(db, owned, names, sessions, minutes, day, mode)


def _tables(
    db: Store,
    owned: bool,
    names: list[str],
    sessions: list[SessionInfo],
    minutes: int,
    day: date | None,
    mode: str,
) -> Iterator[pa.Table]:
    # a store the caller opened keeps its settings; one opened here gets a capped cache
    try:
        with bound_cache(db, len(names)) if owned else contextlib.nullcontext():
            for chunk in export_chunks(db, names, sessions, minutes, day, mode):
                yield chunk_table(chunk)
    finally:
        if owned:
            db.close()


def iter_bars(
    store: StoreArg,
    symbols: Sequence[str] | str | None,
    start: DateArg,
    end: DateArg,
    interval: str | int = "1m",
    adjustment: str = "split",
    as_of: DateArg | None = None,
    backend: str = "pandas",
    calendar: str | ExchangeCalendar = "XNYS",
) -> Iterator[Any]:
    """:func:`read_bars` one session at a time: a DataFrame per session, in order.

    For ranges larger than memory: only one session's bars are held at once.
    """
    check_backend(backend)
    tables = iter_tables(store, symbols, start, end, interval, adjustment, as_of, calendar)
    return (to_frame(t, backend) for t in tables)


def read_bars(
    store: StoreArg,
    symbols: Sequence[str] | str | None,
    start: DateArg,
    end: DateArg,
    interval: str | int = "1m",
    adjustment: str = "split",
    as_of: DateArg | None = None,
    backend: str = "pandas",
    calendar: str | ExchangeCalendar = "XNYS",
) -> Any:
    """The bars a backtest over ``start``..``end`` delivers, as one pandas or polars frame.

    Columns: symbol, timestamp (the bar's open, tz-aware UTC), open, high, low, close,
    volume, minutes; rows by (timestamp, symbol). ``interval`` is ``"1m"``, ``"5m"``,
    ``"1h"`` ... or minutes as an int. ``adjustment`` (raw, split, split_dividend) is
    applied as of ``as_of``, by default the last session of the range: what a
    backtest's history holds on that session (that session's own bars are as traded).
    ``store`` is a store object or a DuckDB path / PostgreSQL URL (opened read-only).
    ``symbols=None`` reads every stored symbol.
    """
    check_backend(backend)
    tables = list(iter_tables(store, symbols, start, end, interval, adjustment, as_of, calendar))
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    return to_frame(table, backend)
