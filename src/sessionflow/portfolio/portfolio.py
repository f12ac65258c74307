"""The portfolio: money kept exact (Decimal), positions with their cost, marks at 1m closes.

Two books are kept and must agree at every instant: cash plus market value, and the
initial cash plus realised and unrealised profit and loss, dividends and cash in
lieu, less fees. Each position keeps its signed total cost (not an average price), so
closing part of it removes exactly the cost share it books as realised: the two books
cannot drift apart, whatever the order stream (tests/test_portfolio.py checks this).

Marks change every minute for every held symbol, so they are kept in numpy arrays by
symbol row (the float each mark is the shortest repr of) and valued exactly in scaled
integers when read, not as a Decimal per position per minute; a mark no float stands
for (a split's) is kept as its Decimal and valued one position at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from sessionflow.execution_manager.orders import Fill, Side, money

ACCOUNTS = ("cash", "margin")
_REG_T = Decimal(2)  # Reg T initial margin 50%: buying power is twice the equity
_PLACES = 6  # marks with at most this many decimals are valued in integers of 1e-6
_SCALE = float(10**_PLACES)
_INT_ROOM = float(2**62)  # a sum of products below this cannot overflow int64
_BUY = Side.BUY  # read per fill: a module name costs less than an Enum class attribute


@dataclass
class Position:
    """``quantity`` > 0 long, < 0 short; ``cost`` the signed total paid for it."""

    symbol: str
    quantity: int = 0
    cost: Decimal = Decimal(0)
    realised: Decimal = Decimal(0)
    last_price: Decimal | None = None
    _seen: float = field(default=math.nan, repr=False, compare=False)  # the mark read last

    @property
    def avg_price(self) -> float:
        return float(self.cost / self.quantity) if self.quantity else 0.0

    @property
    def market_value(self) -> Decimal:
        return self.quantity * self.last_price if self.last_price is not None else Decimal(0)

    @property
    def unrealised(self) -> Decimal:
        return self.market_value - self.cost if self.quantity else Decimal(0)

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "quantity": self.quantity,
            "avg_price": self.avg_price,
            "last_price": None if self.last_price is None else float(self.last_price),
            "market_value": float(self.market_value),
            "realised": float(self.realised),
            "unrealised": float(self.unrealised),
        }

    def _trade(self, qty: int, price: Decimal) -> Decimal:
        """Book ``qty`` (signed) at ``price``; returns the profit it realises."""
        realised = Decimal(0)
        if self.quantity and (qty > 0) != (self.quantity > 0):
            closing = min(abs(qty), abs(self.quantity))
            # closing all of it removes all the cost: no residue of a division stays behind
            whole = closing == abs(self.quantity)
            removed = self.cost if whole else self.cost * closing / abs(self.quantity)
            step = closing if qty > 0 else -closing
            realised = -step * price - removed
            self.cost -= removed
            self.quantity += step
            qty -= step
        if qty:
            self.cost += qty * price
            self.quantity += qty
        self.realised += realised
        if self.last_price is None:
            self.last_price = price
        return realised


class Portfolio:
    """``universe``: the symbols whose marks :meth:`mark_rows` takes by row (their
    sorted order, as ``BarSliceEvent.rows`` counts them); others get rows as they trade."""

    def __init__(
        self, cash: float | Decimal = 100_000, account: str = "cash", universe: Sequence[str] = ()
    ) -> None:
        if account not in ACCOUNTS:
            raise ValueError(f"account {account!r}: use one of {', '.join(ACCOUNTS)}")
        self.account = account
        self.initial_cash = money(cash)
        self.cash = self.initial_cash
        self.fees = Decimal(0)
        self.dividends = Decimal(0)
        self.realised = Decimal(0)
        self._positions: dict[str, Position] = {}
        self.universe = tuple(sorted(set(universe)))
        self._row = {s: i for i, s in enumerate(self.universe)}
        self._qty = np.zeros(len(self._row), np.int64)  # by row: each position's quantity
        self._px = np.full(len(self._row), np.nan)  # by row: the float its mark stands for
        self._exact: dict[int, Decimal] = {}  # rows marked at a Decimal no float stands for
        self._valued: tuple[Decimal, Decimal] | None = None  # (market value, gross), cached
        # (rows held, their quantities, the largest |quantity|, the rows as a list), kept
        # until a quantity changes: marks change every minute, holdings far less often
        self._held: tuple[np.ndarray, np.ndarray, float, list[int]] | None = None
        self._fee = (math.nan, Decimal(0))  # the last fill's fee: (its float, money of it)

    def position(self, symbol: str) -> Position:
        """The position in ``symbol``; a flat one (quantity 0) when none is held."""
        pos = self._positions.get(symbol)
        return Position(symbol) if pos is None else self._read(pos)

    @property
    def positions(self) -> dict[str, Position]:
        """Open positions (quantity not 0), by symbol."""
        return {s: self._read(p) for s, p in self._positions.items() if p.quantity}

    def quantities(self) -> npt.NDArray[np.int64]:
        """The quantity held in each symbol of :attr:`universe`, in its order (a copy):
        every position at once, for a strategy deciding over columns."""
        return self._qty[: len(self.universe)].copy()

    def _pos(self, symbol: str) -> Position:
        pos = self._positions.get(symbol)
        if pos is None:
            pos = self._positions[symbol] = Position(symbol)
            if symbol not in self._row:
                self._row[symbol] = len(self._row)
                if len(self._row) > len(self._qty):
                    more = max(8, len(self._qty))
                    self._qty = np.concatenate([self._qty, np.zeros(more, np.int64)])
                    self._px = np.concatenate([self._px, np.full(more, np.nan)])
        return self._read(pos)

    def _read(self, pos: Position) -> Position:
        """``pos`` with its mark brought from the arrays."""
        row = self._row[pos.symbol]
        exact = self._exact.get(row)
        if exact is not None:
            pos.last_price, pos._seen = exact, math.nan
        elif (px := float(self._px[row])) != pos._seen and not math.isnan(px):
            pos.last_price, pos._seen = money(px), px
        return pos

    def quantity(self, symbol: str) -> int:
        """The quantity held in ``symbol`` (0 when flat), without reading its mark."""
        pos = self._positions.get(symbol)
        return 0 if pos is None else pos.quantity

    def _write(self, pos: Position) -> None:
        """Store ``pos``'s quantity and mark in the arrays."""
        row = self._row[pos.symbol]
        if self._qty[row] != pos.quantity:
            self._qty[row] = pos.quantity
            self._held = None
        self._exact.pop(row, None)
        if pos.last_price is not None:
            px = float(pos.last_price)
            self._px[row] = px
            if px == pos._seen or money(px) == pos.last_price:  # _seen: money(_seen) is it
                pos._seen = px
            else:
                self._exact[row] = pos.last_price
        self._valued = None

    def apply_fill(self, fill: Fill) -> None:
        price, fee_float = money(fill.price), fill.commission
        if fee_float == self._fee[0] and fee_float:  # fills mostly pay the same fee
            fee = self._fee[1]  # (not for 0: -0.0 == 0.0, their Decimals differ)
        else:
            fee = money(fee_float)
            self._fee = (fee_float, fee)
        qty = fill.quantity if fill.side is _BUY else -fill.quantity
        pos = self._positions.get(fill.symbol)
        if pos is None or pos.last_price is None:  # its first fill marks it at the price
            pos = self._pos(fill.symbol)
            self.realised += pos._trade(qty, price)
            self._write(pos)
        else:  # the mark in the arrays stays as it is (a fill never moves it): not read
            self.realised += pos._trade(qty, price)
            self._qty[self._row[fill.symbol]] = pos.quantity
            self._held = self._valued = None
        self.cash -= qty * price + fee
        self.fees += fee

    def mark(self, symbol: str, price: float) -> None:
        pos = self._positions.get(symbol)
        if pos is not None and pos.quantity:
            row = self._row[symbol]
            self._px[row] = float(price)
            self._exact.pop(row, None)
            self._valued = None

    def mark_rows(self, rows: np.ndarray, closes: np.ndarray) -> None:
        """:meth:`mark` for the held symbols among ``rows`` (rows of :attr:`universe`) at
        ``closes``: one array update per instant instead of a Decimal per position."""
        held = self._qty[rows] != 0
        if held.any():
            rows = rows[held]
            self._px[rows] = closes[held]
            if self._exact:
                for row in rows.tolist():
                    self._exact.pop(row, None)
            self._valued = None

    @property
    def held(self) -> list[str]:
        return [s for s, p in self._positions.items() if p.quantity]

    def apply_split(self, symbol: str, ratio: float) -> Decimal:
        """``ratio`` new shares per old: quantity times it (whole shares; the fraction
        is paid as cash in lieu at the mark divided by the ratio), total cost unchanged,
        so the average price is divided by it. Returns the cash in lieu."""
        pos = self._positions.get(symbol)
        if pos is None or not pos.quantity or ratio == 1.0:
            return Decimal(0)
        try:
            return self._split(self._read(pos), money(ratio))
        finally:
            self._write(pos)

    def _split(self, pos: Position, r: Decimal) -> Decimal:
        exact = pos.quantity * r
        whole = int(exact)  # toward zero
        frac = exact - whole
        price = (pos.last_price or Decimal(0)) / r
        pos.last_price, pos._seen = price, math.nan  # no float read stands for it yet
        if not frac:
            pos.quantity = whole
            return Decimal(0)
        removed = pos.cost * frac / exact
        proceeds = frac * price
        pos.cost -= removed
        pos.quantity = whole
        pos.realised += proceeds - removed
        self.realised += proceeds - removed
        self.cash += proceeds
        return proceeds

    def apply_dividend(self, symbol: str, per_share: float) -> Decimal:
        """Credit (debit, when short) ``per_share`` on the held quantity; returns the amount."""
        pos = self._positions.get(symbol)
        if pos is None or not pos.quantity or not per_share:
            return Decimal(0)
        amount = pos.quantity * money(per_share)
        self.cash += amount
        self.dividends += amount
        return amount

    def _value(self) -> tuple[Decimal, Decimal]:
        """(market value, gross exposure), exact, computed once per change of marks or
        quantities: in integers of 1e-6 when every held mark is a float with at most six
        decimals (then ``money(px)`` is ``rint(px * 1e6) / 1e6`` exactly), else per position."""
        if self._valued is not None:
            return self._valued
        if self._held is None:  # quantities changed since the last valuation
            rows = np.flatnonzero(self._qty)
            qty = self._qty[rows]
            self._held = rows, qty, float(np.abs(qty).max(initial=0)), rows.tolist()
        rows, qty, top_qty, row_list = self._held
        px = self._px[rows]
        units = np.rint(px * _SCALE)
        fits = (
            len(rows) > 0
            and not (self._exact and not self._exact.keys().isdisjoint(row_list))
            and bool((units / _SCALE == px).all())  # what array_equal does, for less
            and top_qty * float(np.abs(units).max()) * len(rows) < _INT_ROOM
        )
        if fits:
            value = qty * units.astype(np.int64)
            mv = Decimal(int(value.sum())).scaleb(-_PLACES)
            gross = Decimal(int(np.abs(value).sum())).scaleb(-_PLACES)
        else:
            each = [self._read(p).market_value for p in self._positions.values() if p.quantity]
            mv = sum(each, Decimal(0))
            gross = sum((abs(v) for v in each), Decimal(0))
        self._valued = (mv, gross)
        return mv, gross

    @property
    def market_value(self) -> Decimal:
        return self._value()[0]

    @property
    def gross_exposure(self) -> Decimal:
        return self._value()[1]

    @property
    def unrealised(self) -> Decimal:
        cost = sum((p.cost for p in self._positions.values() if p.quantity), Decimal(0))
        return self.market_value - cost

    @property
    def equity(self) -> Decimal:
        return self.cash + self.market_value

    @property
    def equity_from_pnl(self) -> Decimal:
        """The second book: what equity must be from profit and loss alone."""
        return self.initial_cash + self.realised + self.unrealised + self.dividends - self.fees

    @property
    def buying_power(self) -> Decimal:
        """Cash account: the cash. Reg T margin: twice the equity less the gross exposure."""
        if self.account == "cash":
            return self.cash
        return _REG_T * self.equity - self.gross_exposure

    def to_dict(self) -> dict[str, object]:
        return {
            "cash": float(self.cash),
            "equity": float(self.equity),
            "market_value": float(self.market_value),
            "realised": float(self.realised),
            "unrealised": float(self.unrealised),
            "fees": float(self.fees),
            "dividends": float(self.dividends),
            "positions": [p.to_dict() for p in self.positions.values()],
        }
