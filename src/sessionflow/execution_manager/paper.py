"""A paper ExecutionManager: market orders fill at the close of the latest 1m bar.

It reads prices only from session_data and time only from the clock, so a
strategy's fills see exactly what the strategy saw (no look-ahead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sessionflow.models import normalize_symbol
from sessionflow.session_data import SessionData
from sessionflow.time_provider import Clock


@dataclass(frozen=True)
class Fill:
    symbol: str
    quantity: int
    price: float
    time: datetime


class PaperExecutionManager:
    def __init__(self, session_data: SessionData, clock: Clock) -> None:
        self._session_data = session_data
        self._clock = clock
        self.fills: list[Fill] = []

    def market_order(self, symbol: str, quantity: int) -> Fill:
        """Fill now at the last known close; ValueError if the symbol has no bar yet."""
        symbol = normalize_symbol(symbol)
        if quantity == 0:
            raise ValueError("order quantity must be non-zero")
        price = self._session_data.last_close(symbol)
        if price is None:
            raise ValueError(f"{symbol}: no price yet in this session")
        fill = Fill(symbol, quantity, price, self._clock.now())
        self.fills.append(fill)
        return fill

    def position(self, symbol: str) -> int:
        symbol = normalize_symbol(symbol)
        return sum(f.quantity for f in self.fills if f.symbol == symbol)
