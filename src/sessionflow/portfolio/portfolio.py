"""The portfolio: money kept exact (Decimal), positions with their cost, marks at 1m closes.

Two books are kept and must agree at every instant: cash plus market value, and the
initial cash plus realised and unrealised profit and loss, dividends and cash in
lieu, less fees. Each position keeps its signed total cost (not an average price), so
closing part of it removes exactly the cost share it books as realised: the two books
cannot drift apart, whatever the order stream (tests/test_portfolio.py checks this).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sessionflow.execution_manager.orders import Fill, money

ACCOUNTS = ("cash", "margin")
_REG_T = Decimal(2)  # Reg T initial margin 50%: buying power is twice the equity


@dataclass
class Position:
    """``quantity`` > 0 long, < 0 short; ``cost`` the signed total paid for it."""

    symbol: str
    quantity: int = 0
    cost: Decimal = Decimal(0)
    realised: Decimal = Decimal(0)
    last_price: Decimal | None = None

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
    def __init__(self, cash: float | Decimal = 100_000, account: str = "cash") -> None:
        if account not in ACCOUNTS:
            raise ValueError(f"account {account!r}: use one of {', '.join(ACCOUNTS)}")
        self.account = account
        self.initial_cash = money(cash)
        self.cash = self.initial_cash
        self.fees = Decimal(0)
        self.dividends = Decimal(0)
        self.realised = Decimal(0)
        self._positions: dict[str, Position] = {}

    def position(self, symbol: str) -> Position:
        """The position in ``symbol``; a flat one (quantity 0) when none is held."""
        return self._positions.get(symbol) or Position(symbol)

    @property
    def positions(self) -> dict[str, Position]:
        """Open positions (quantity not 0), by symbol."""
        return {s: p for s, p in self._positions.items() if p.quantity}

    def _pos(self, symbol: str) -> Position:
        pos = self._positions.get(symbol)
        if pos is None:
            pos = self._positions[symbol] = Position(symbol)
        return pos

    def apply_fill(self, fill: Fill) -> None:
        price, fee = money(fill.price), money(fill.commission)
        qty = fill.signed_quantity
        self.realised += self._pos(fill.symbol)._trade(qty, price)
        self.cash -= qty * price + fee
        self.fees += fee

    def mark(self, symbol: str, price: float) -> None:
        pos = self._positions.get(symbol)
        if pos is not None and pos.quantity:
            pos.last_price = money(price)

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
        r = money(ratio)
        exact = pos.quantity * r
        whole = int(exact)  # toward zero
        frac = exact - whole
        price = (pos.last_price or Decimal(0)) / r
        pos.last_price = price
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

    @property
    def market_value(self) -> Decimal:
        return sum((p.market_value for p in self._positions.values()), Decimal(0))

    @property
    def gross_exposure(self) -> Decimal:
        return sum((abs(p.market_value) for p in self._positions.values()), Decimal(0))

    @property
    def unrealised(self) -> Decimal:
        return sum((p.unrealised for p in self._positions.values()), Decimal(0))

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
