"""Parity: what a strategy did in a backtest and live on the same sessions, event by event.

Why a log and not the results: results are totals, and two runs can reach the same
total by different roads. A ``ParityLog`` holds every order as submitted (time, symbol,
side, type, quantity, prices, time in force), every fill and every order's end in the
order the strategy heard them, each with the instant it heard it, and the final
portfolio. ``compare`` walks two logs and names the first difference.

Live must differ in one named way (docs/live.md, "Parity"): a decision made on a
derived bar is made when the upkeep check announces that bar, ``bar_grace_seconds``
after the window's end, where the backtest decides at the window's end. So a live
order's submission time may be later than the backtest's by up to ``decision_lag``
(and the local trading server fills it on the bar that opened up to that long before
it, ``TradingBook.fill_grace_s``). The session's end comes after the final check, so a
day order's expiry at the close is booked up to the same lag later. That is the whole
tolerance: everything else (the order's terms, each fill's time, price, quantity and
commission, the instant it was booked, each order's end, the portfolio to the cent)
must be equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sessionflow.events import BatchEvent, SessionEndEvent
from sessionflow.execution_manager import ExecutionManager, Order, OrderEvent, OrderStatus
from sessionflow.portfolio import Portfolio

if TYPE_CHECKING:
    from sessionflow.system_manager import SystemManager

_ENDS = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


@dataclass(frozen=True)
class OrderEntry:
    """One order as the strategy submitted it (its seq is its place in submission order)."""

    seq: int
    submitted_at: datetime
    terms: tuple[Any, ...]  # symbol, side, type, quantity, limit, stop, tif
    refused: str | None = None  # ended as submitted: rejected, or a day order at the close

    def __str__(self) -> str:
        end = f" {self.refused} at once" if self.refused else ""
        return f"order {self.seq} at {self.submitted_at:%Y-%m-%d %H:%M:%S}Z {self.terms}{end}"


@dataclass(frozen=True)
class EventEntry:
    """A fill or an order's end, with the instant the ExecutionManager booked it."""

    heard: datetime
    seq: int
    what: tuple[Any, ...]  # ("fill", time, qty, price, commission) or ("end", status)

    def __str__(self) -> str:
        what = ", ".join(f"{x:%H:%M}Z" if isinstance(x, datetime) else str(x) for x in self.what)
        return f"heard {self.heard:%Y-%m-%d %H:%M:%S}Z order {self.seq} ({what})"


@dataclass
class ParityLog:
    """Built by :func:`capture` as a run goes; closed (orders and the final portfolio
    taken, nothing more recorded) at the last session's end."""

    orders: list[OrderEntry] = field(default_factory=list)
    events: list[EventEntry] = field(default_factory=list)
    portfolio: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # order id -> its end at submit
    closed: bool = False

    def close(self, em: ExecutionManager) -> ParityLog:
        self.orders = [
            OrderEntry(i, o.submitted_at, _terms(o), self.refused.get(o.id))
            for i, o in enumerate(em.orders)
        ]
        self.portfolio = portfolio_state(em.portfolio)
        self.closed = True
        return self


def capture(system: SystemManager, sessions: int) -> ParityLog:
    """A log of ``system``'s orders, fills and order ends as they are booked, closed when
    the ``sessions``-th session ends: what a run does after its sessions (the end-of-run
    cancels, a live run's kill switch) is not compared. Register it after the strategy."""
    em, clock = system.execution_manager, system.data_manager.clock
    log = ParityLog()
    seq: dict[str, int] = {}  # order id -> its place in submission order
    ended = 0

    def seq_of(order: Order) -> int:
        for i in range(len(seq), len(em.orders)):
            seq[em.orders[i].id] = i
        return seq[order.id]

    def heard(order: Order, event: OrderEvent) -> None:
        if log.closed:
            return
        if event.status in _ENDS and len(order.events) == 1:  # its first event: at submit
            log.refused[order.id] = event.status.value
            return
        n = seq_of(order)
        if event.fill is not None:
            f = event.fill
            what: tuple[Any, ...] = ("fill", f.time, f.quantity, f.price, f.commission)
            log.events.append(EventEntry(clock.now(), n, what))
        if event.status in _ENDS:
            log.events.append(EventEntry(clock.now(), n, ("end", event.status.value)))

    def session_end(event: BatchEvent) -> None:
        nonlocal ended
        if isinstance(event, SessionEndEvent):
            ended += 1
            if ended == sessions:
                log.close(em)

    em.on_update(heard)
    system.on_batch(session_end)
    return log


def _terms(o: Order) -> tuple[Any, ...]:
    return (o.symbol, o.side.value, o.type.value, o.quantity, o.limit, o.stop, o.tif.value)


def portfolio_state(pf: Portfolio) -> dict[str, Any]:
    """Cash, equity, fees and every position (quantity, cost, realised P&L, last mark),
    as strings, so equal means equal to the cent."""
    positions = {
        p.symbol: (p.quantity, str(p.cost), str(p.realised), str(p.last_price))
        for p in sorted(pf.positions.values(), key=lambda p: p.symbol)
        if p.quantity or p.realised
    }
    return {"cash": str(pf.cash), "equity": str(pf.equity), "fees": str(pf.fees),
            "positions": positions}  # fmt: skip


@dataclass(frozen=True)
class Difference:
    """The first place two logs part: ``where`` (orders, events, portfolio), the index,
    and each side's entry (None when that side has none)."""

    where: str
    index: int
    backtest: object
    live: object

    def __str__(self) -> str:
        return (
            f"first difference in {self.where} #{self.index}: "
            f"backtest {self.backtest} != live {self.live}"
        )


def compare(backtest: ParityLog, live: ParityLog, decision_lag: timedelta) -> Difference | None:
    """The first difference between the two logs, or None; ``decision_lag`` is the one
    tolerance (a live order may be submitted up to that much later)."""
    for i in range(max(len(backtest.orders), len(live.orders))):
        b = backtest.orders[i] if i < len(backtest.orders) else None
        lv = live.orders[i] if i < len(live.orders) else None
        if b is None or lv is None or not _same_order(b, lv, decision_lag):
            return Difference("orders", i, b, lv)
    for i in range(max(len(backtest.events), len(live.events))):
        be = backtest.events[i] if i < len(backtest.events) else None
        le = live.events[i] if i < len(live.events) else None
        if be != le and not _same_expiry(be, le, decision_lag):
            return Difference("events", i, be, le)
    for key in sorted(backtest.portfolio.keys() | live.portfolio.keys()):
        if backtest.portfolio.get(key) != live.portfolio.get(key):
            return Difference(f"portfolio {key}", 0, backtest.portfolio.get(key),
                              live.portfolio.get(key))  # fmt: skip
    return None


def _same_expiry(b: EventEntry | None, lv: EventEntry | None, lag: timedelta) -> bool:
    """A day order's expiry is booked when the session ends: live after the final check,
    up to ``lag`` later than the backtest's close."""
    if b is None or lv is None or (b.seq, b.what) != (lv.seq, lv.what):
        return False
    return b.what == ("end", "expired") and timedelta(0) <= lv.heard - b.heard <= lag


def _same_order(b: OrderEntry, lv: OrderEntry, lag: timedelta) -> bool:
    late = lv.submitted_at - b.submitted_at
    same = (b.seq, b.terms, b.refused) == (lv.seq, lv.terms, lv.refused)
    return same and timedelta(0) <= late <= lag


__all__ = ["Difference", "EventEntry", "OrderEntry", "ParityLog", "capture", "compare"]
