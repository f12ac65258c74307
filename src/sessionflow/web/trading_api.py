"""REST for a strategy run: its equity curve, fills, open orders and positions (docs/web.md).

Every answer comes from the snapshots ``LiveResults`` takes on the coordinator
thread, copied under its lock: a request never reads the portfolio or the
ExecutionManager the engine is changing. Without a strategy run the lists are empty
and ``strategy`` is null.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from sessionflow.models import normalize_symbol
from sessionflow.web.control import SystemSlot


def build_trading_router(slot: SystemSlot) -> APIRouter:
    api = APIRouter(prefix="/api")

    def snapshot() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        run = slot.run
        if run is None:
            lists: dict[str, Any] = {k: [] for k in ("equity", "fills", "orders", "positions")}
            return None, lists | {"cash": None, "summary": None}
        return run.describe(), run.live.snapshot()

    @api.get("/run")
    def run() -> dict[str, Any]:
        about, snap = snapshot()
        return {"strategy": about, "running": about is not None and snap["summary"] is None,
                "cash": snap["cash"], "summary": snap["summary"]}  # fmt: skip

    @api.get("/equity")
    def equity(since: int | None = None) -> dict[str, Any]:
        """``since`` (epoch seconds): only the points after it, for a page catching up."""
        _, snap = snapshot()
        points = snap["equity"]
        if since is not None:
            points = [p for p in points if p["time"] > since]
        return {"points": points}

    @api.get("/fills")
    def fills(symbol: str | None = None) -> dict[str, Any]:
        _, snap = snapshot()
        out = snap["fills"]
        if symbol is not None:
            try:
                sym = normalize_symbol(symbol)
            except ValueError as exc:
                raise HTTPException(400, " ".join(str(exc).split())) from None
            out = [f for f in out if f["symbol"] == sym]
        return {"fills": out}

    @api.get("/orders")
    def orders() -> dict[str, Any]:
        return {"orders": snapshot()[1]["orders"]}

    @api.get("/positions")
    def positions() -> dict[str, Any]:
        _, snap = snapshot()
        return {"positions": snap["positions"], "cash": snap["cash"]}

    return api
