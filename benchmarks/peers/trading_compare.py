"""Orders and fills of sessionflow and of the reference in one comparable form.

A fill is ``(time, symbol, side, quantity, price, commission)``, ``time`` the open of
the 1m bar it filled against. An order is ``(live_from, symbol, side, quantity, kind,
limit, stop, outcome)``:

- ``live_from``: when it could first fill. sessionflow: when it was placed. backtrader
  places a bracket's exits with the entry but keeps them inactive until the entry
  fills, so its exits count from the entry's fill (the close of that bar), when
  sessionflow's strategy places them; exits whose entry never filled are dropped
  (backtrader cancels them with the entry; sessionflow never placed them).
- ``outcome``: filled, cancelled, expired, or open. backtrader expires a day order at
  the first bar after its day, so one placed in the last session is still working when
  the data end; sessionflow expires it at that session's close: both "expired". Open
  is a gtc or market order still working when the data ended (backtrader leaves it
  working, sessionflow cancels it with "run ended", and refuses one placed at the last
  session's close as ``after_last_session``: all three are "open").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from peers.trading_backtrader import RefFill, RefOrder

MINUTE = timedelta(minutes=1)
FillRow = tuple[str, str, str, int, float, float]
OrderRow = tuple[str, str, str, int, str, float | None, float | None, str]
_REF_OUTCOME = {"completed": "filled", "canceled": "cancelled", "expired": "expired"}


def ref_fills(fills: Iterable[RefFill]) -> list[FillRow]:
    return sorted(
        (f.time.isoformat(), f.symbol, f.side, f.quantity, f.price, f.commission) for f in fills
    )


def sf_fills(fills: Iterable[Any]) -> list[FillRow]:
    return sorted(
        (f.time.isoformat(), f.symbol, f.side.value, f.quantity, f.price, f.commission)
        for f in fills
    )


def ref_orders(orders: Iterable[RefOrder]) -> list[OrderRow]:
    out: list[OrderRow] = []
    for o in orders:
        if o.parent_filled is False:
            continue
        live = o.parent_filled if isinstance(o.parent_filled, datetime) else o.submitted
        outcome = _REF_OUTCOME.get(o.status, "expired" if o.day else "open")
        out.append(
            (live.isoformat(), o.symbol, o.side, o.quantity, o.kind, o.limit, o.stop, outcome)
        )
    return sorted(out, key=_key)


def sf_orders(orders: Iterable[Any]) -> list[OrderRow]:
    out: list[OrderRow] = []
    for o in orders:
        outcome = o.status.value
        reason = o.reason or ""
        if (outcome == "cancelled" and reason == "run ended") or reason.startswith(
            "after_last_session"
        ):
            outcome = "open"
        row = (o.submitted_at.isoformat(), o.symbol, o.side.value, o.quantity, o.type.value)
        out.append((*row, o.limit, o.stop, outcome))
    return sorted(out, key=_key)


def _key(row: OrderRow) -> tuple[Any, ...]:
    return tuple("" if x is None else x for x in row)


def differences(ours: list[Any], theirs: list[Any], limit: int = 5) -> str:
    """'' when equal; else the first rows only one side has."""
    if ours == theirs:
        return ""
    only_ours = [r for r in ours if r not in theirs][:limit]
    only_theirs = [r for r in theirs if r not in ours][:limit]
    return (
        f"{len(ours)} vs {len(theirs)} rows; sessionflow only: {only_ours}; "
        f"backtrader only: {only_theirs}"
    )
