"""The adjustment of past bars as of one session: pure arithmetic, no store.

An action with ex-date E changes bars dated before E, and only in views as of a
session on or after E (never earlier: no look-ahead). As of session S a bar of day
d < S is scaled by every action with ``d < E <= S``: prices by ``1/split`` (times
the dividend factor under ``split_dividend``), volumes by ``split``. The current
session's own bars are never changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from sessionflow.store.base import BarBatch

ADJUSTMENTS = ("raw", "split", "split_dividend")


@dataclass(frozen=True)
class Action:
    """One corporate action of ``symbol`` effective at the open of session ``ex_date``.

    ``split`` is new shares per old (7.0 for AAPL 2014-06-09, 0.5 for a 1-for-2
    reverse split); ``dividend_factor`` is what earlier prices are multiplied by for
    the cash ``dividend`` (``1 - dividend / previous close``; 1.0 for none).
    """

    symbol: str
    ex_date: date
    split: float = 1.0
    dividend: float = 0.0
    dividend_factor: float = 1.0

    def price_factor(self, mode: str) -> float:
        if mode == "raw":
            return 1.0
        factor = 1.0 / self.split
        return factor * self.dividend_factor if mode == "split_dividend" else factor

    def volume_factor(self, mode: str) -> float:
        return 1.0 if mode == "raw" else self.split

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "ex_date": self.ex_date.isoformat(),
            "split": self.split,
            "dividend": self.dividend,
            "dividend_factor": self.dividend_factor,
        }


@dataclass(frozen=True)
class MapEntry:
    """``symbol`` traded as ``ticker`` on every date up to and including ``until``."""

    symbol: str
    until: date
    ticker: str


def check_mode(mode: str) -> str:
    if mode not in ADJUSTMENTS:
        raise ValueError(f"adjustment {mode!r}: use one of {', '.join(ADJUSTMENTS)}")
    return mode


def day_factors(
    actions: Iterable[Action], day: date, as_of: date, mode: str
) -> tuple[float, float]:
    """(price factor, volume factor) for a bar of ``day`` seen as of session ``as_of``."""
    price, volume = 1.0, 1.0
    for a in actions:
        if day < a.ex_date <= as_of:
            price *= a.price_factor(mode)
            volume *= a.volume_factor(mode)
    return price, volume


def effective_on(actions: Iterable[Action], session: date) -> list[Action]:
    """The actions whose ex-date is ``session`` (applied to history when it begins)."""
    return [a for a in actions if a.ex_date == session]


def adjust_day(
    batch: BarBatch, day: date, as_of: date, actions: Sequence[Action], mode: str
) -> BarBatch:
    """Bars of one past ``day`` (any symbols) as seen as of ``as_of``; raw bars are not copied.

    Each action scales in turn, in ex-date order (volumes rounded after each), as a
    backtest scales its history when it rolls over the action: the same bits, not a
    product of factors that can differ in the last one.
    """
    if mode == "raw" or day >= as_of or not len(batch) or not actions:
        return batch
    due = sorted((a for a in actions if day < a.ex_date <= as_of), key=lambda a: a.ex_date)
    due = [a for a in due if a.price_factor(mode) != 1.0 or a.volume_factor(mode) != 1.0]
    if not due:
        return batch
    o, h, lo, c = (batch.open.copy(), batch.high.copy(), batch.low.copy(), batch.close.copy())
    volume = batch.volume.copy()
    for a in due:
        mask = batch.symbol == a.symbol
        if not mask.any():
            continue
        price = a.price_factor(mode)
        for col in (o, h, lo, c):
            col[mask] *= price
        volume[mask] = np.rint(volume[mask] * a.volume_factor(mode)).astype(np.int64)
    return BarBatch(batch.symbol, batch.ts_us, o, h, lo, c, volume, batch.regular)


def history_symbols(symbol: str, day: date, entries: Sequence[MapEntry]) -> str:
    """The ticker ``symbol`` traded under on ``day`` (itself when no map entry says otherwise)."""
    for e in sorted(entries, key=lambda e: e.until):
        if e.symbol == symbol and day <= e.until:
            return e.ticker
    return symbol
