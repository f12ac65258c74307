"""Plain-data session reports, built under the SessionData lock and safe to hand anywhere."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np

from sessionflow.session_data.quality import quality_array


@dataclass(frozen=True)
class SymbolReport:
    symbol: str
    bars: int
    expected: int
    quality: float
    gaps_found: int
    gaps_filled: int
    volume: int
    high: float | None
    low: float | None
    derived: dict[int, int]
    gap_ranges: list[tuple[str, str]]
    rejections: dict[str, int] = field(default_factory=dict)
    quotes: int = 0
    extended_bars: int = 0
    extended_quotes: int = 0
    corrected: int = 0
    # volume over the trailing days of history held when the session began (adjusted
    # as of the session): what a date shard and the single process must agree on
    trailing_volume: int = 0


@dataclass(frozen=True)
class ReportInputs:
    """What a session's report needs, copied at the session's end: the per-symbol rows
    are built from it only when someone reads them (most consumers of SessionEndEvent
    never do, and at 500 symbols building them cost 6% of a batch replay)."""

    names: tuple[str, ...]
    expected: int
    received: list[int]
    volume: list[int]
    high: list[float]
    low: list[float]
    filled: list[int]
    missing: list[int]
    derived: dict[int, list[int]]
    derived_intervals: tuple[int, ...]
    gap_open: Any  # [minute x symbol] bool array (a copy)
    open_us: int
    rejections: dict[int, dict[str, int]]  # only symbols that have any
    counts: list[tuple[int, int, int, int]]  # quotes, extended bars/quotes, corrected
    trailing_volume: list[int]

    def rows(self) -> list[SymbolReport]:
        from sessionflow.session_data.session_data import gap_ranges

        ranges = gap_ranges(self.gap_open, self.open_us)
        expected, derived = self.expected, self.derived
        quality = quality_array(np.asarray(self.received, dtype=np.int64), expected).tolist()
        out = []
        for i, name in enumerate(self.names):
            got, high, low = self.received[i], self.high[i], self.low[i]
            quotes, ext_bars, ext_quotes, corrected = self.counts[i]
            out.append(
                SymbolReport(
                    symbol=name,
                    bars=got,
                    expected=expected,
                    quality=quality[i],
                    gaps_found=self.missing[i] + self.filled[i],
                    gaps_filled=self.filled[i],
                    volume=self.volume[i],
                    high=None if math.isnan(high) else high,
                    low=None if math.isnan(low) else low,
                    derived={
                        k: derived[k][i] if k in derived else 0 for k in self.derived_intervals
                    },
                    gap_ranges=ranges.get(i, []),
                    rejections=self.rejections.get(i, {}),
                    quotes=quotes,
                    extended_bars=ext_bars,
                    extended_quotes=ext_quotes,
                    corrected=corrected,
                    trailing_volume=self.trailing_volume[i],
                )
            )
        return out


class SessionReport:
    """One session's per-symbol summary. ``rows`` is built on first read when the
    report was made from :class:`ReportInputs` (SessionData.report), then kept."""

    __slots__ = ("_inputs", "_rows", "actions", "early_close", "session")

    def __init__(
        self,
        session: date,
        early_close: bool,
        rows: list[SymbolReport] | None = None,
        actions: list[dict[str, Any]] | None = None,
        inputs: ReportInputs | None = None,
    ) -> None:
        if (rows is None) == (inputs is None):
            raise ValueError("SessionReport needs rows or inputs, not both")
        init = object.__setattr__  # immutable once built, like the frozen dataclass it was
        init(self, "session", session)
        init(self, "early_close", early_close)
        init(self, "_rows", rows)
        init(self, "_inputs", inputs)
        # corporate actions applied to history when this session began
        # (docs/corporate-actions.md)
        init(self, "actions", actions if actions is not None else [])

    session: date
    early_close: bool
    actions: list[dict[str, Any]]
    _rows: list[SymbolReport] | None
    _inputs: ReportInputs | None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SessionReport is immutable (cannot set {name})")

    @property
    def rows(self) -> list[SymbolReport]:
        rows = self._rows
        if rows is None:
            assert self._inputs is not None
            rows = self._inputs.rows()
            object.__setattr__(self, "_rows", rows)
            object.__setattr__(self, "_inputs", None)
        return rows

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionReport):
            return NotImplemented
        mine = (self.session, self.early_close, self.rows, self.actions)
        return mine == (other.session, other.early_close, other.rows, other.actions)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SessionReport(session={self.session!r}, early_close={self.early_close!r}, "
            f"rows=[{len(self.rows)} rows], actions={self.actions!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"session": self.session, "early_close": self.early_close,
                "rows": self.rows, "actions": self.actions}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in (
            ("session", state["session"]),
            ("early_close", state["early_close"]),
            ("_rows", state["rows"]),
            ("_inputs", None),
            ("actions", state["actions"]),
        ):
            object.__setattr__(self, name, value)

    def with_actions(self, actions: list[dict[str, Any]]) -> SessionReport:
        """The same report listing ``actions`` (a sharded run's first session, sharding/)."""
        return SessionReport(self.session, self.early_close, rows=self.rows, actions=actions)

    def to_pandas(self) -> Any:
        """One row per symbol (``frames.objects.REPORT_COLUMNS``) as a pandas DataFrame."""
        from sessionflow.frames.backend import to_frame
        from sessionflow.frames.objects import report_table

        return to_frame(report_table(self), "pandas")

    def to_polars(self) -> Any:
        """One row per symbol as a polars DataFrame."""
        from sessionflow.frames.backend import to_frame
        from sessionflow.frames.objects import report_table

        return to_frame(report_table(self), "polars")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "session": self.session.isoformat(),
            "early_close": self.early_close,
            "rows": [asdict(r) for r in self.rows],
            "actions": copy.deepcopy(self.actions),
        }
        for row in out["rows"]:
            row["derived"] = {str(k): v for k, v in row["derived"].items()}
        return out
