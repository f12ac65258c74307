"""Frames of what the engine already holds as objects: bars, session reports, results.

These are small (a session of one symbol, one row per symbol, one per order), so the
columns are taken from the objects (``zip(*bars)`` transposes in C); bulk reads go
through ``frames.read`` instead. Times become tz-aware UTC timestamps, not strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sessionflow.export.bars import SCHEMA
from sessionflow.frames.backend import to_frame
from sessionflow.models import Bar

if TYPE_CHECKING:
    from sessionflow.results import BacktestResult
    from sessionflow.session_data import SessionReport

UTC_US = pa.timestamp("us", tz="UTC")
BAR_SCHEMA = SCHEMA.append(pa.field("filled", pa.bool_()))  # the export's, plus filled
_BAR_FIELDS = ("symbol", "ts", "open", "high", "low", "close", "volume", "minutes", "filled")


def bars_table(bars: Sequence[Bar]) -> pa.Table:
    """Bars as an Arrow table: the export's columns plus ``filled`` (a gap-filled bar)."""
    if not bars:
        return BAR_SCHEMA.empty_table()
    columns = dict(zip(Bar._fields, zip(*bars, strict=True), strict=True))
    fields = zip(_BAR_FIELDS, BAR_SCHEMA, strict=True)
    arrays = [pa.array(columns[name], type=f.type) for name, f in fields]
    return pa.Table.from_arrays(arrays, schema=BAR_SCHEMA)


class Bars(tuple[Bar, ...]):
    """A tuple of bars (what ``DataManager.bars`` and ``history`` return) that also
    turns into a DataFrame; equal to the plain tuple of the same bars."""

    __slots__ = ()

    def to_arrow(self) -> pa.Table:
        return bars_table(self)

    def to_pandas(self) -> Any:
        return to_frame(bars_table(self), "pandas")

    def to_polars(self) -> Any:
        return to_frame(bars_table(self), "polars")


def records_table(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], times: Iterable[str] = ()
) -> pa.Table:
    """Records (``to_dict`` of orders, fills, report rows ...) as a table of ``columns``;
    the ``times`` columns (ISO strings or datetimes) become UTC timestamps."""
    rows, stamped = list(rows), set(times)
    data: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in columns}
    for c in stamped:
        data[c] = [None if v is None else _when(v) for v in data[c]]
    arrays = [pa.array(data[c], type=UTC_US if c in stamped else None) for c in columns]
    return pa.Table.from_arrays(arrays, names=list(columns))


def _when(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


REPORT_COLUMNS = (
    "session", "early_close", "symbol", "bars", "expected", "quality", "gaps_found",
    "gaps_filled", "volume", "high", "low", "quotes", "extended_bars", "extended_quotes",
    "corrected", "trailing_volume", "rejected",
)  # fmt: skip


def report_table(report: SessionReport) -> pa.Table:
    """One row per symbol of a session report (derived counts and gap ranges left out:
    they are nested; ``report.to_dict()`` has them), rejections summed in ``rejected``."""
    rows = [
        {
            **{k: getattr(r, k) for k in REPORT_COLUMNS[2:-1]},
            "session": report.session,
            "early_close": report.early_close,
            "rejected": sum(r.rejections.values()),
        }
        for r in report.rows
    ]
    return records_table(rows, REPORT_COLUMNS)


RESULT_TABLES = ("orders", "fills", "trades", "positions", "equity", "daily")


def result_table(result: BacktestResult, name: str) -> pa.Table:
    """One of a backtest's tables (``RESULT_TABLES``) with the columns ``--output`` writes
    (``results.writers``), times as timestamps; ``daily`` is the equity at each session's end."""
    from sessionflow.results.writers import COLUMNS

    if name == "equity":
        return records_table(
            ({"time": t, "equity": e} for t, e in result.equity_curve), ("time", "equity"), ["time"]
        )
    if name == "daily":
        return records_table(
            ({"session": d, "equity": e} for d, e in result.daily_equity), ("session", "equity")
        )
    if name not in RESULT_TABLES:
        raise ValueError(f"table {name!r}: use one of {', '.join(RESULT_TABLES)}")
    rows: list[dict[str, Any]]
    if name == "orders":
        rows = [o.to_dict() for o in result.orders]
    elif name == "fills":
        rows = [f.to_dict() for f in result.fills]
    elif name == "trades":
        rows = [t.to_dict() for t in result.trades]
    else:
        rows = result.positions
    times = {"orders": ["submitted_at", "updated_at"], "fills": ["time"],
             "trades": ["opened", "closed"]}.get(name, [])  # fmt: skip
    return records_table(rows, COLUMNS[name], times)
