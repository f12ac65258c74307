"""Corporate actions (splits, dividends, renames) and the as-of adjustment of history."""

from sessionflow.corporate_actions.adjust import (
    ADJUSTMENTS,
    Action,
    AdjustmentError,
    MapEntry,
    due_actions,
    history_symbols,
)

__all__ = [
    "ADJUSTMENTS",
    "Action",
    "AdjustmentError",
    "MapEntry",
    "due_actions",
    "history_symbols",
]
