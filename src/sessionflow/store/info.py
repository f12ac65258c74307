"""What a store holds, compared with the exchange calendar (``sessionflow store info``).

Quality per symbol is its received regular-session minutes over the minutes the
calendar expects (early closes included) from the symbol's first stored session
to its last: a symbol that starts later than others is not charged for the days
before it was stored. Sessions are exchange-local dates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sessionflow.session_data.quality import quality_percent
from sessionflow.store.base import CommandStore
from sessionflow.time_provider import ExchangeCalendar


@dataclass(frozen=True)
class SymbolInfo:
    symbol: str
    first_session: date
    last_session: date
    sessions: int  # sessions with at least one regular bar
    calendar_sessions: int  # calendar sessions from first to last
    bars: int  # regular-session bars
    extended_bars: int
    expected: int  # regular minutes the calendar expects over those sessions
    quality: float  # 100 * bars / expected, two decimals


@dataclass(frozen=True)
class StoreInfo:
    path: str
    schema_version: int
    created_by: str
    user_data: bool
    calendar: str
    rows: dict[str, int]
    symbols: list[str]
    first_session: date | None
    last_session: date | None
    sessions_covered: int  # sessions in which any symbol has a regular bar
    calendar_sessions: int  # calendar sessions from the first to the last
    missing_sessions: list[date] = field(default_factory=list)
    per_symbol: list[SymbolInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("first_session", "last_session"):
            out[key] = out[key].isoformat() if out[key] else None
        out["missing_sessions"] = [d.isoformat() for d in self.missing_sessions]
        for row in out["per_symbol"]:
            row["first_session"] = row["first_session"].isoformat()
            row["last_session"] = row["last_session"].isoformat()
        return out


def store_info(store: CommandStore, calendar: ExchangeCalendar) -> StoreInfo:
    """The inventory of ``store``; reads only grouped counts."""
    days = store.bar_days(calendar.tz.key)
    per: dict[str, list[tuple[date, int, int]]] = {}
    for sym, day, regular, extended in days:
        per.setdefault(sym, []).append((day, regular, extended))
    symbols = [_symbol_info(s, rows, calendar) for s, rows in per.items()]
    covered = sorted({d for rows in per.values() for d, regular, _ in rows if regular})
    first = covered[0] if covered else None
    last = covered[-1] if covered else None
    in_range = [s.date for s in calendar.sessions(first, last)] if first and last else []
    meta = store.meta
    return StoreInfo(
        path=store.path,
        schema_version=int(meta.get("schema_version", "0")),
        created_by=meta.get("created_by", "unknown"),
        user_data=meta.get("user_data") == "true",
        calendar=calendar.name,
        rows=store.table_rows(),
        symbols=sorted(per),
        first_session=first,
        last_session=last,
        sessions_covered=len(covered),
        calendar_sessions=len(in_range),
        missing_sessions=sorted(set(in_range) - set(covered)),
        per_symbol=symbols,
    )


def _symbol_info(
    symbol: str, rows: list[tuple[date, int, int]], calendar: ExchangeCalendar
) -> SymbolInfo:
    regular_days = [d for d, regular, _ in rows if regular]
    extended = sum(x for _, _, x in rows)
    if not regular_days:
        first = last = rows[0][0]
        return SymbolInfo(symbol, first, last, 0, 0, 0, extended, 0, 0.0)
    first, last = regular_days[0], regular_days[-1]
    sessions = calendar.sessions(first, last)
    expected = sum(s.minutes for s in sessions)
    bars = sum(r for _, r, _ in rows)
    quality = quality_percent(bars, expected, 2)
    return SymbolInfo(
        symbol, first, last, len(regular_days), len(sessions), bars, extended, expected, quality
    )
