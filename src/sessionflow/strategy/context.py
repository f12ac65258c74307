"""What a strategy sees: the clock, data, history, orders, the portfolio, parameters, a logger.

Built over the SystemManager's public parts only, so the same context serves a
backtest and a live run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from sessionflow.execution_manager import Order, Side, TimeInForce
from sessionflow.execution_manager.manager import plain_symbols, spelled
from sessionflow.models import Bar
from sessionflow.portfolio import Portfolio, Position

if TYPE_CHECKING:
    from sessionflow.data_manager import DataManager
    from sessionflow.system_manager import SystemManager


class OrderTerms(TypedDict, total=False):
    limit: float | None
    stop: float | None
    tif: TimeInForce | str
    client_order_id: str | None


class Context:
    def __init__(self, system: SystemManager, params: dict[str, Any], log: logging.Logger) -> None:
        self._system = system
        self._em = system.execution_manager
        self._plain = plain_symbols(system.data_manager.symbols)  # spelled as they come
        self.params = params
        self.log = log

    @property
    def now(self) -> datetime:
        """The system's clock: simulated in a backtest, wall time live."""
        return self._system.data_manager.clock.now()

    @property
    def data(self) -> DataManager:
        """The DataManager: ``bars``, ``snapshot``, ``history``, ``symbols``, ``session_data``."""
        return self._system.data_manager

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._system.data_manager.symbols

    @property
    def portfolio(self) -> Portfolio:
        return self._em.portfolio

    def history(self, symbol: str, interval: int = 1, days: int | None = None) -> list[Bar]:
        """Trailing bars of ``symbol``, oldest first: the last ``days`` trailing sessions
        (all kept when None; ``trailing_days`` in settings) adjusted as of the session
        being played, then this session's bars so far. ``interval`` 1 or a derived one
        (trailing days hold ``historical_intervals``)."""
        dm = self._system.data_manager
        sym = spelled(symbol, self._plain)
        held = sorted(dm.session_data.history.get(interval, {}))
        if days is not None:
            held = held[-days:] if days > 0 else []
        out: list[Bar] = []
        for day in held:
            out.extend(dm.history(sym, interval, day))
        out.extend(dm.bars(sym, interval))
        return out

    def submit(
        self, symbol: str, side: Side | str, quantity: int, **terms: Unpack[OrderTerms]
    ) -> Order:
        """An order; its type follows from the prices (none: market, ``limit``, ``stop``,
        both: stop-limit); ``tif`` day (default) or gtc; ``client_order_id`` makes a
        resubmission the same order. A refused order comes back with status ``rejected``
        and a reason."""
        return self._em.submit(symbol, side, quantity, **terms)

    def buy(self, symbol: str, quantity: int, **terms: Unpack[OrderTerms]) -> Order:
        """:meth:`submit` to buy: ``limit``, ``stop``, ``tif``, ``client_order_id``."""
        return self._em.submit(symbol, Side.BUY, quantity, **terms)

    def sell(self, symbol: str, quantity: int, **terms: Unpack[OrderTerms]) -> Order:
        """:meth:`submit` to sell (short only where the account and settings allow)."""
        return self._em.submit(symbol, Side.SELL, quantity, **terms)

    def submit_many(
        self,
        symbols: Sequence[str],
        side: Side | str | Sequence[Side | str],
        quantity: int | Sequence[int],
        tif: TimeInForce | str = "day",
    ) -> list[Order]:
        """Market orders for many symbols at once (``side`` and ``quantity`` one for all
        or one per symbol): the same orders as :meth:`submit` for each in turn, in that
        order, for less per order (the columnar ``on_bars`` path's way to act)."""
        return self._em.submit_many(symbols, side, quantity, tif=tif)

    def quantities(self) -> npt.NDArray[np.int64]:
        """The quantity held in each of :attr:`symbols`, in its order (0 when flat): every
        position at once, indexed like ``BarSliceEvent.rows``."""
        pf = self._em.portfolio
        if pf.universe == self.symbols:
            return pf.quantities()
        return np.array([pf.quantity(s) for s in self.symbols], dtype=np.int64)

    def cancel(self, order_id: str) -> Order | None:
        return self._em.cancel(order_id)

    def replace(
        self,
        order_id: str,
        quantity: int | None = None,
        limit: float | None = None,
        stop: float | None = None,
    ) -> Order | None:
        return self._em.replace(order_id, quantity, limit, stop)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._em.open_orders(None if symbol is None else spelled(symbol, self._plain))

    def position(self, symbol: str) -> Position:
        """The position in ``symbol`` (quantity 0 when flat)."""
        return self._em.portfolio.position(spelled(symbol, self._plain))
