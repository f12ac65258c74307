"""Say plainly when a backtest or report asked for data the store does not hold.

Why: a symbol/session with nothing stored otherwise shows up as 0 bars and 390
gaps, which reads like a data-quality problem rather than a missing import. Nothing
stored for the whole request is an error (exit 2); some empty symbol-sessions are
one warning line naming them (the run and its output go on).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sessionflow.session_data import SessionReport

MAX_DAYS_LISTED = 5


class NoDataError(ValueError):
    """Nothing at all is stored for the symbols and sessions asked for."""

    @classmethod
    def of(cls, symbols: Sequence[str], sessions: Sequence[date]) -> NoDataError:
        return cls(
            f"no stored bars for {', '.join(symbols)} in {_span(sessions)}; "
            "import data for these sessions first"
        )


def empty_sessions(reports: Sequence[SessionReport]) -> dict[str, list[date]]:
    """Per symbol, the sessions in which it had no bar at all."""
    out: dict[str, list[date]] = {}
    for rep in reports:
        for row in rep.rows:
            if row.bars == 0:
                out.setdefault(row.symbol, []).append(rep.session)
    return out


def check_coverage(reports: Sequence[SessionReport]) -> str | None:
    """A warning line for empty symbol-sessions, None if all have data; NoDataError if none."""
    empty = empty_sessions(reports)
    if not empty:
        return None
    sessions = [rep.session for rep in reports]
    symbols = sorted({row.symbol for rep in reports for row in rep.rows})
    if sorted(empty) == symbols and all(len(days) == len(sessions) for days in empty.values()):
        raise NoDataError.of(symbols, sessions)
    parts = []
    for sym in sorted(empty):
        days = empty[sym]
        if len(days) == len(sessions):
            parts.append(f"{sym} in every session ({sessions[0]}..{sessions[-1]})")
        else:
            listed = ", ".join(d.isoformat() for d in days[:MAX_DAYS_LISTED])
            more = f" and {len(days) - MAX_DAYS_LISTED} more" if len(days) > MAX_DAYS_LISTED else ""
            parts.append(f"{sym} on {listed}{more}")
    return "warning: no stored bars for " + "; ".join(parts)


def _span(sessions: Sequence[date]) -> str:
    if len(sessions) == 1:
        return f"session {sessions[0]}"
    return f"{len(sessions)} sessions {sessions[0]}..{sessions[-1]}"
