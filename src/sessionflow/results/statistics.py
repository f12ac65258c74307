"""The results table's numbers, computed with empyrical-reloaded where it has them.

Returns are daily (session close to session close, the first from the initial cash),
which is what empyrical's annualisation (252 periods a year) expects. The maximum
drawdown and its dates come from the per-minute equity curve, so an intraday trough
counts.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from sessionflow.results.trades import Trade


def daily_returns(initial: float, daily: list[tuple[date, float]]) -> pd.Series:
    values = np.array([initial] + [e for _, e in daily], dtype=float)
    index = pd.DatetimeIndex([pd.Timestamp(d) for d, _ in daily])
    return pd.Series(values[1:] / values[:-1] - 1.0, index=index)


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def drawdown(times: list[datetime], equity: list[float]) -> dict[str, Any]:
    """Largest fall from a peak of the curve: its size (<= 0), peak, trough, recovery."""
    if not equity:
        return {"max_drawdown": 0.0, "peak": None, "trough": None, "recovery": None}
    eq = np.asarray(equity, dtype=float)
    peaks = np.maximum.accumulate(eq)
    dd = eq / peaks - 1.0
    trough = int(np.argmin(dd))
    if dd[trough] == 0:
        return {"max_drawdown": 0.0, "peak": None, "trough": None, "recovery": None}
    peak = int(np.argmax(eq[: trough + 1]))
    back = np.flatnonzero(eq[trough:] >= eq[peak])
    recovery = times[trough + int(back[0])].isoformat() if len(back) else None
    return {
        "max_drawdown": float(dd[trough]),
        "peak": times[peak].isoformat(),
        "trough": times[trough].isoformat(),
        "recovery": recovery,
    }


def compute(
    initial: float,
    final: float,
    daily: list[tuple[date, float]],
    times: list[datetime],
    equity: list[float],
    exposure: list[float],
    trades: list[Trade],
    fees: float,
    open_trades: int,
) -> dict[str, Any]:
    import empyrical  # about 1 s of imports (scipy): paid by a run that has results only

    returns = daily_returns(initial, daily)
    wins = [t.pnl for t in trades if t.pnl > 0]
    losses = [t.pnl for t in trades if t.pnl < 0]
    dd = drawdown(times, equity)
    stats: dict[str, Any] = {
        "initial_equity": initial,
        "final_equity": final,
        "total_return": final / initial - 1.0,
        "annual_return": _finite(empyrical.annual_return(returns)) if len(returns) else None,
        "annual_volatility": _finite(empyrical.annual_volatility(returns))
        if len(returns) > 1 else None,
        "sharpe": _finite(empyrical.sharpe_ratio(returns)) if len(returns) > 1 else None,
        "sortino": _finite(empyrical.sortino_ratio(returns)) if len(returns) > 1 else None,
        "max_drawdown": dd["max_drawdown"],
        "max_drawdown_peak": dd["peak"],
        "max_drawdown_trough": dd["trough"],
        "max_drawdown_recovery": dd["recovery"],
        "trades": len(trades),
        "open_trades": open_trades,
        "win_rate": len(wins) / len(trades) if trades else None,
        "profit_factor": (sum(wins) / -sum(losses)) if losses else None,
        "exposure": float(np.mean(np.asarray(exposure) > 0)) if exposure else 0.0,
        "fees": fees,
        "sessions": len(daily),
    }  # fmt: skip
    return stats
