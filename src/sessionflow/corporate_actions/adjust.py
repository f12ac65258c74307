"""The adjustment of past bars as of one session: pure arithmetic, no store.

An action with ex-date E changes bars dated before E, and only in views as of a
session on or after E (never earlier: no look-ahead). As of session S a bar of day
d < S is scaled by every action with ``d < E <= S``: prices by ``1/split`` (times
the dividend factor under ``split_dividend``), volumes by ``split``. The current
session's own bars are never changed.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

ADJUSTMENTS = ("raw", "split", "split_dividend")
# An action's factors stay within [1/MAX_FACTOR, MAX_FACTOR]: a 1,000,000-for-1 split or
# a 1-for-1,000,000 reverse split at most, a dividend of at most 999,999/1,000,000 of the
# reference close. Beyond, one action would move prices or volumes by more than 1e6.
MAX_FACTOR = 1e6


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

    def describe(self) -> str:
        """The action in a user's words, for messages: ``XYZ split 2:1 ex 2024-03-05``."""
        what = []
        if self.split != 1.0:
            what.append(f"split {self.split:g}:1")
        if self.dividend_factor != 1.0 or self.dividend:
            what.append(f"dividend {self.dividend:g} (factor {self.dividend_factor:.6g})")
        return f"{self.symbol} {' and '.join(what) or 'no change'} ex {self.ex_date.isoformat()}"

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


def factor_problem(split: float, dividend_factor: float) -> str | None:
    """Why an action's factors are out of bounds (importers refuse the row), or None."""
    if not 1 / MAX_FACTOR <= split <= MAX_FACTOR:  # also NaN
        return f"split {split:g} is outside {1 / MAX_FACTOR:g}..{MAX_FACTOR:g} (new shares per old)"
    if not 1 / MAX_FACTOR <= dividend_factor <= 1.0:
        return (
            f"dividend factor {dividend_factor:g} is outside {1 / MAX_FACTOR:g}..1 "
            "(the dividend must be below the reference close, by at least a millionth of it)"
        )
    return None


class AdjustmentError(ValueError):
    """History adjusted for an action would hold a price or volume out of bounds; the
    message is one line naming the action. Nothing adjusted with it is delivered or
    written."""

    template = (
        "{action}: adjusted history would hold {what} {value:g}, outside {bounds}; "
        "nothing was delivered or written; correct or remove the action "
        "(sessionflow import actions)"
    )

    def __init__(self, action: Action, what: str, value: float, bounds: str) -> None:
        self.action = action
        super().__init__(
            self.template.format(action=action.describe(), what=what, value=value, bounds=bounds)
        )


def check_mode(mode: str) -> str:
    if mode not in ADJUSTMENTS:
        raise ValueError(f"adjustment {mode!r}: use one of {', '.join(ADJUSTMENTS)}")
    return mode


def due_actions(
    actions: Iterable[Action],
    after: date,
    upto: date,
    mode: str,
    symbols: Container[str] | None = None,
) -> list[Action]:
    """The as-of rule, the one place it is written: the actions with
    ``after < ex_date <= upto`` (of ``symbols``, when given), in ex-date order; none
    under ``raw``. History as of ``upto`` holding a day ``after`` is scaled by exactly
    these, one at a time (``SessionData.adjust_history``): the backtest's history (loaded
    or rolled) and ``export bars --as-of`` both call this."""
    if mode == "raw":
        return []
    due = [
        a for a in actions if after < a.ex_date <= upto and (symbols is None or a.symbol in symbols)
    ]
    return sorted(due, key=lambda a: a.ex_date)  # stable: the store's order within a day


def history_symbols(symbol: str, day: date, entries: Sequence[MapEntry]) -> str:
    """The ticker ``symbol`` traded under on ``day`` (itself when no map entry says otherwise)."""
    for e in sorted(entries, key=lambda e: e.until):
        if e.symbol == symbol and day <= e.until:
            return e.ticker
    return symbol
