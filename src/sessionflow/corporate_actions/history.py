"""One past session's stored bars named as now (renames followed), as stored.

Shared by the backtest's history loader and ``export bars`` so both read the same
bars; both then adjust them with the one as-of rule (``adjust.due_actions`` applied by
``SessionData.adjust_history``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sessionflow.corporate_actions.adjust import Action, MapEntry, history_symbols
from sessionflow.store.base import BarBatch, Store
from sessionflow.time_provider import SessionInfo


def stored_actions(store: Store, symbols: Sequence[str]) -> tuple[list[Action], list[MapEntry]]:
    """Actions and renames of ``symbols``; none from a store older than their tables."""
    return store.load_actions(symbols), store.load_symbol_map(symbols)


def session_bars(
    store: Store,
    symbols: Sequence[str],
    session: SessionInfo,
    renames: Sequence[MapEntry],
) -> BarBatch:
    """Regular-session bars of ``session`` named as now, raw as stored.

    A symbol that traded under another ticker that day (map file) is read under that
    ticker; bars come back ordered by (ts, symbol) as the store gives them.
    """
    names = {s: history_symbols(s, session.date, renames) for s in symbols}
    batch = store.load_bars(sorted(set(names.values())), session.open, session.close)
    if any(t != s for s, t in names.items()) and len(batch):
        back = {t: s for s, t in names.items()}
        symbol = np.array([back.get(str(t), str(t)) for t in batch.symbol], dtype=object)
        order = np.lexsort((symbol.astype(str), batch.ts_us))
        batch = BarBatch(
            symbol, batch.ts_us, batch.open, batch.high, batch.low, batch.close,
            batch.volume, batch.regular,
        ).take(order)  # fmt: skip
    return batch


def session_rows(
    store: Store,
    names: Sequence[str],
    session: SessionInfo,
    renames: Sequence[MapEntry],
) -> tuple[npt.NDArray[np.intp] | None, BarBatch]:
    """:func:`session_bars`, plus each bar's row in ``names`` (sorted, unique) when no
    rename applies that day: the store's join gives it, so no lookup per bar is needed
    (``SessionData.grid_from_batch``); None when renames make the lookup necessary."""
    if any(history_symbols(s, session.date, renames) != s for s in names):
        return None, session_bars(store, names, session, renames)
    return store.load_bar_rows(names, session.open, session.close)
