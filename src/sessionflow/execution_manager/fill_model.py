"""The backtest fill model: where and how much of a working order one 1m bar fills.

Every rule is a row of the table in docs/strategies.md, each with its test. The
model is pure arithmetic on one bar's OHLCV; *which* bars an order may meet (only
bars opening at or after its submission, regular-session, not gap-filled) is the
backtest broker's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR

from sessionflow.execution_manager.orders import Order, OrderType, Side, money

DEFAULT_MAX_VOLUME_SHARE = 0.025  # zipline's VolumeShareSlippage default: 2.5% of a bar


_MARKET = OrderType.MARKET  # read per match: a module name costs less than an Enum's


class FillModelError(ValueError):
    """A fill model setting that cannot be used."""


@dataclass(frozen=True)
class FillModel:
    """``max_volume_share``: the share of a bar's volume one order may take (None: all).

    Whatever the cap leaves stays working for the following bars (partial fills).
    ``market_at_quote``: market orders fill at the first quote bar opening at or after
    them, at its opening ask (buy) or bid (sell), instead of at a trade bar's open;
    a symbol without stored quotes then never fills a market order.
    """

    max_volume_share: float | None = DEFAULT_MAX_VOLUME_SHARE
    market_at_quote: bool = False

    def __post_init__(self) -> None:
        share = self.max_volume_share
        if share is not None and not 0 < share <= 1:
            raise FillModelError(f"max_volume_share {share}: use a share in (0, 1] or None")

    def capacity(self, volume: int) -> int:
        """Shares one bar can fill: ``floor(volume * share)``, exact (no float product)."""
        if self.max_volume_share is None:
            return volume
        cap = money(self.max_volume_share) * volume
        return int(cap.to_integral_value(rounding=ROUND_FLOOR))

    def match(
        self, order: Order, triggered: bool, o: float, h: float, lo: float, available: int
    ) -> tuple[int, float | None, bool]:
        """(shares this bar fills, at which price before slippage, whether the stop has
        triggered). ``available``: shares the bar can still fill (its capacity less what
        earlier orders took); ``triggered``: a stop-limit's stop was reached on an
        earlier bar, so it now works as a limit order.
        """
        price, triggered = _price(order, triggered, o, h, lo)
        if price is None:
            return 0, None, triggered
        return max(0, min(order.remaining, available)), price, triggered


def _price(
    order: Order, triggered: bool, o: float, h: float, lo: float
) -> tuple[float | None, bool]:
    kind = order.type
    if kind is _MARKET:
        return o, False
    buy = order.side is Side.BUY
    if kind is OrderType.LIMIT or (kind is OrderType.STOP_LIMIT and triggered):
        assert order.limit is not None
        return _limit(buy, order.limit, o, h, lo), triggered
    assert order.stop is not None
    stop = order.stop
    gap = o >= stop if buy else o <= stop
    reached = gap or (h >= stop if buy else lo <= stop)
    if kind is OrderType.STOP:
        if not reached:
            return None, False
        return (o if gap else stop), True
    # stop-limit, not triggered yet
    assert order.limit is not None
    limit = order.limit
    if not reached:
        return None, False
    if gap:  # triggered at the open: the whole bar counts as a limit order's
        return _limit(buy, limit, o, h, lo), True
    # triggered inside the bar at the stop: fills on this bar only if the stop price
    # itself is within the limit (the bar's later path is unknown), at the stop
    within = stop <= limit if buy else stop >= limit
    return (stop if within else None), True


def _limit(buy: bool, limit: float, o: float, h: float, lo: float) -> float | None:
    if buy:
        if o <= limit:
            return o
        return limit if lo <= limit else None
    if o >= limit:
        return o
    return limit if h >= limit else None
