"""``--output DIR``: orders, fills, trades, positions and the per-minute equity curve as
CSV or Parquet (pandas writes both), plus ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from sessionflow.results.result import BacktestResult

FORMATS = ("csv", "parquet")


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


COLUMNS: dict[str, list[str]] = {
    "orders": [
        "id", "client_order_id", "symbol", "side", "quantity", "type", "tif", "limit", "stop",
        "status", "submitted_at", "updated_at", "filled_quantity", "avg_fill_price", "reason",
    ],
    "fills": ["order_id", "time", "symbol", "side", "quantity", "price", "commission"],
    "trades": ["symbol", "direction", "opened", "closed", "quantity", "pnl"],
    "positions": ["symbol", "quantity", "avg_price", "last_price", "market_value", "realised",
                  "unrealised"],
}  # fmt: skip
"""The columns of each table ``--output`` writes (and ``BacktestResult.to_pandas`` gives)."""


def tables(result: BacktestResult) -> dict[str, pd.DataFrame]:
    equity = pd.DataFrame(
        {
            "time": [t.isoformat() for t, _ in result.equity_curve],
            "equity": [e for _, e in result.equity_curve],
        }
    )
    return {
        "orders": _frame([o.to_dict() for o in result.orders], COLUMNS["orders"]),
        "fills": _frame([f.to_dict() for f in result.fills], COLUMNS["fills"]),
        "trades": _frame([t.to_dict() for t in result.trades], COLUMNS["trades"]),
        "positions": _frame(result.positions, COLUMNS["positions"]),
        "equity": equity,
    }


def write(result: BacktestResult, directory: Path, fmt: str = "csv") -> list[Path]:
    """Write every table and ``summary.json`` into ``directory`` (made if missing)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: use {' or '.join(FORMATS)}")
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in tables(result).items():
        path = directory / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        written.append(path)
    summary = directory / "summary.json"
    summary.write_text(json.dumps(result.summary(), indent=2, sort_keys=True) + "\n")
    written.append(summary)
    return written
