"""The order round trip alone: ExecutionManager + BacktestBroker + Portfolio, no engine.

500 symbols; each instant a burst of market orders (``submit_many``) that the next
slice fills, with the per-share commission; process CPU per order, the fastest of
``--repeat``. ``--compare`` alternates, in one process, the dataclass-generated
frozen ``__init__`` of ``Fill``/``OrderEvent`` (what they had before) with their own,
and checks the two runs book the same fills.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sessionflow.events import BarSliceEvent
from sessionflow.execution_manager import BacktestBroker, ExecutionManager, FillModel
from sessionflow.execution_manager.commission import PerShare
from sessionflow.execution_manager.orders import Fill, OrderEvent
from sessionflow.models import to_us
from sessionflow.portfolio import Portfolio
from sessionflow.store import BarBatch
from sessionflow.time_provider import BacktestClock

T0 = datetime(2024, 11, 26, 14, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _slices(symbols: list[str], instants: int) -> list[BarSliceEvent]:
    rng = random.Random(7)
    n = len(symbols)
    out = []
    for k in range(instants):
        at = T0 + k * MIN
        o = [round(rng.uniform(90, 110), 2) for _ in range(n)]
        c = [round(x + rng.uniform(-1, 1), 2) for x in o]
        hi = [max(a, b) + 0.05 for a, b in zip(o, c, strict=True)]
        lo = [min(a, b) - 0.05 for a, b in zip(o, c, strict=True)]
        batch = BarBatch.from_columns(
            symbols, [to_us(at)] * n, o, hi, lo, c, [10_000] * n, [True] * n
        )
        out.append(BarSliceEvent(batch, at + MIN, rows=np.arange(n, dtype=np.intp)))
    return out


def run(symbols: list[str], slices: list[BarSliceEvent], burst: int) -> tuple[float, int, str]:
    """(process CPU seconds, fills, sha1 of the fills)."""
    clock = BacktestClock(T0)
    last: dict[str, float] = {}
    pf = Portfolio(10_000_000, "cash", symbols)
    broker = BacktestBroker(symbols, FillModel(None), PerShare())
    em = ExecutionManager(broker, pf, symbols, clock, last.get)
    fills: list[Fill] = []
    em.on_update(lambda o, e: fills.append(e.fill) if e.fill is not None else None)
    rng = random.Random(3)
    start = time.process_time()
    for ev in slices:
        clock.advance(ev.time)
        em.on_market(ev)
        last.update(zip(symbols, ev.bars.close.tolist(), strict=True))
        names = rng.sample(symbols, burst)
        sides = ["buy" if pf.quantity(s) <= 0 else "sell" for s in names]
        em.submit_many(names, sides, [10] * burst, tif="day")
    cpu = time.process_time() - start
    digest = hashlib.sha1(repr([f.to_dict() for f in fills]).encode()).hexdigest()
    return cpu, len(fills), digest


def _generated(names: tuple[str, ...], defaults: int) -> Callable[..., None]:
    """The frozen dataclass's own ``__init__``: ``object.__setattr__`` per field."""
    head = names[: len(names) - defaults]
    params = ", ".join([*head, *(f"{n}=None" for n in names[len(head) :])])
    body = "".join(f"    _set(self, {n!r}, {n})\n" for n in names)
    code = f"def __init__(self, {params}, _set=object.__setattr__):\n{body}"
    scope: dict[str, Any] = {}
    exec(code, scope)  # the benchmark's "before", built from the field names
    return scope["__init__"]  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--instants", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compare", action="store_true")
    args = ap.parse_args()
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    slices = _slices(symbols, args.instants)
    own = (Fill.__init__, OrderEvent.__init__)
    old = (
        _generated(Fill.__match_args__, 0),
        _generated(OrderEvent.__match_args__, 6),
    )
    kinds = {"after": own, "before": old} if args.compare else {"after": own}
    best: dict[str, float] = {}
    seen: dict[str, tuple[int, str]] = {}
    for _ in range(args.repeat):
        for kind, (fill_init, event_init) in kinds.items():
            Fill.__init__ = fill_init  # type: ignore[method-assign]
            OrderEvent.__init__ = event_init  # type: ignore[method-assign]
            cpu, n, digest = run(symbols, slices, args.burst)
            best[kind] = min(best.get(kind, cpu), cpu)
            seen[kind] = (n, digest)
    Fill.__init__, OrderEvent.__init__ = own  # type: ignore[method-assign]
    if len(set(seen.values())) != 1:
        print(f"fills differ: {seen}", file=sys.stderr)
        return 1
    n, digest = next(iter(seen.values()))
    for kind, cpu in best.items():
        print(f"{kind}: {cpu:.3f} s CPU, {cpu / n * 1e6:.1f} us per order, {n} fills {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
