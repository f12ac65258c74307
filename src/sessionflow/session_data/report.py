"""Plain-data session reports, built under the SessionData lock and safe to hand anywhere."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sessionflow.models import from_us

if TYPE_CHECKING:
    from sessionflow.session_data.symbol_session_data import SymbolSessionData


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

    @classmethod
    def from_data(
        cls, data: SymbolSessionData, expected: int, intervals: tuple[int, ...]
    ) -> SymbolReport:
        missing = sum(b - a for a, b in data.gaps) // 60_000_000
        derived = data.owner.derived
        return cls(
            symbol=data.symbol,
            bars=data.received,
            expected=expected,
            quality=round(100.0 * data.received / expected, 4) if expected else 0.0,
            gaps_found=missing + data.filled,
            gaps_filled=data.filled,
            volume=data.session_volume,
            high=data.session_high,
            low=data.session_low,
            derived={
                k: int(derived[k].present[data.index].sum()) if k in derived else 0
                for k in intervals
            },
            gap_ranges=[(from_us(a).isoformat(), from_us(b).isoformat()) for a, b in data.gaps],
            rejections=dict(sorted(data.rejections.items())),
            quotes=len(data.quotes),
            extended_bars=len(data.extended_bars),
        )


@dataclass(frozen=True)
class SessionReport:
    session: date
    early_close: bool
    rows: list[SymbolReport]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["session"] = self.session.isoformat()
        for row in out["rows"]:
            row["derived"] = {str(k): v for k, v in row["derived"].items()}
        return out
