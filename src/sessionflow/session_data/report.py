"""Plain-data session reports, built under the SessionData lock and safe to hand anywhere."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any


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


@dataclass(frozen=True)
class SessionReport:
    session: date
    early_close: bool
    rows: list[SymbolReport]
    # corporate actions applied to history when this session began (docs/corporate-actions.md)
    actions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["session"] = self.session.isoformat()
        for row in out["rows"]:
            row["derived"] = {str(k): v for k, v in row["derived"].items()}
        return out
