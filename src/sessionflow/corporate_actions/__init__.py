"""Corporate actions (splits, dividends, renames) and the as-of adjustment of history."""

from sessionflow.corporate_actions.adjust import (
    ADJUSTMENTS,
    Action,
    MapEntry,
    adjust_day,
    day_factors,
    effective_on,
    history_symbols,
)

__all__ = [
    "ADJUSTMENTS",
    "Action",
    "MapEntry",
    "adjust_day",
    "day_factors",
    "effective_on",
    "history_symbols",
]
