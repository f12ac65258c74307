"""How far one shard's buying power moved, and how close its checks came to the line.

A sharded strategy run (docs/strategies.md, "Sharded runs") gives every shard the
whole cash. One process would have seen, at each buying-power check of a symbol, its
own free buying power plus what the other symbols had moved theirs by. Free buying
power (buying power less what open orders would use) is a sum of per-symbol parts for
both accounts, so each shard records the lowest and highest its part went and the
closest margin on either side of its checks (at submit, and when a buy of a cash
account fills); :func:`decided_alike` then proves every check came out as it would
have in one process, or the merge is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class BuyingPowerBounds:
    """``base``: the free buying power at the start (nothing held, no orders)."""

    base: Decimal
    low: Decimal = Decimal(0)  # lowest (free - base) seen, <= 0
    high: Decimal = Decimal(0)  # highest (buying power - base) seen, >= 0
    passed: Decimal | None = None  # smallest headroom (>= 0) of a check that passed
    failed: Decimal | None = None  # smallest shortfall (> 0) of a check that failed
    checks: int = field(default=0)

    def see(self, free: Decimal, power: Decimal) -> None:
        """``free``: buying power less open orders' use; ``power``: buying power alone.
        The high end is taken from ``power`` (>= free) so it also bounds the cash a
        fill-time check of a cash account sees."""
        self.low = min(self.low, free - self.base)
        self.high = max(self.high, power - self.base)

    def check(self, headroom: Decimal) -> None:
        """A buying-power decision with ``headroom`` (buying power less the need)."""
        self.checks += 1
        if headroom >= 0:
            self.passed = headroom if self.passed is None else min(self.passed, headroom)
        else:
            self.failed = -headroom if self.failed is None else min(self.failed, -headroom)


def decided_alike(bounds: Sequence[BuyingPowerBounds]) -> int | None:
    """The index of the first shard one of whose checks might have gone the other way in
    one process (where the other shards' moves add to its buying power), else None."""
    total_low = sum((b.low for b in bounds), Decimal(0))
    total_high = sum((b.high for b in bounds), Decimal(0))
    for i, b in enumerate(bounds):
        others_low, others_high = total_low - b.low, total_high - b.high
        if b.passed is not None and b.passed + others_low < 0:
            return i
        if b.failed is not None and b.failed - others_high <= 0:
            return i
    return None
