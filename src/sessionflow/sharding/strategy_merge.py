"""Merging per-symbol strategy shards into the single process's result.

Every shard played with the whole cash, so an account figure of the whole run is the
initial cash plus the sum of each shard's move away from it (cash, equity; exposure
simply sums). Sums are taken in Decimal from each float's shortest repr, the values
the portfolio held, so the merged curve is the single process's to the cent. Orders
are renumbered in the order one process would have numbered them: by submission time,
then symbol (callbacks of one instant run in symbol order), then the shard's own order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sessionflow.execution_manager import Order, OrderStatus
from sessionflow.execution_manager.bounds import decided_alike
from sessionflow.execution_manager.orders import money
from sessionflow.results import BacktestResult, compute_statistics, round_trips
from sessionflow.results.result import fills_of
from sessionflow.sharding.strategy import StrategyShardResult


class BuyingPowerDiffers(ValueError):
    """A buying-power decision of one shard might have gone the other way in one process."""

    TEMPLATE = (
        "sharded run refused: shard {index} ({label}) decided buying power within what the "
        "other symbols moved it by, so one process might have decided otherwise; run in one "
        "process or with more --cash (docs/strategies.md, Sharded runs)"
    )


def _renumbered(parts: Sequence[StrategyShardResult]) -> list[Order]:
    keyed = sorted(
        (o.submitted_at, o.symbol, int(o.id.split("-")[1]), p.shard.index, o)
        for p in parts
        for o in p.result.orders
    )
    orders: list[Order] = []
    for n, (*_, o) in enumerate(keyed, 1):
        new = f"o-{n}"
        events = [
            dataclasses.replace(
                e,
                order_id=new,
                fill=None if e.fill is None else dataclasses.replace(e.fill, order_id=new),
            )
            for e in o.events
        ]
        cid = new if o.client_order_id == o.id else o.client_order_id
        orders.append(dataclasses.replace(o, id=new, client_order_id=cid, events=events))
    return orders


def _summed(
    initial: Decimal, curves: Sequence[tuple[Sequence[Any], Sequence[float]]]
) -> tuple[list[Any], list[float]]:
    """initial + sum of each curve's move from ``initial`` at every key any curve has,
    a curve holding its last value where it has none (its symbols had no bar)."""
    keys = sorted({k for ks, _ in curves for k in ks})
    total: list[Decimal] = [initial] * len(keys)
    for ks, vs in curves:
        last = initial
        j = 0
        for i, k in enumerate(keys):
            while j < len(ks) and ks[j] <= k:
                last = money(vs[j])
                j += 1
            total[i] += last - initial
    return keys, [float(v) for v in total]


def merge_backtests(parts: Sequence[StrategyShardResult]) -> BacktestResult:
    """One result from every shard's; raises :class:`BuyingPowerDiffers` when inexact."""
    parts = sorted(parts, key=lambda p: p.shard.index)
    bad = decided_alike([p.bounds for p in parts])
    if bad is not None:
        shard = parts[bad].shard
        raise BuyingPowerDiffers(BuyingPowerDiffers.TEMPLATE.format(
            index=shard.index, label=shard.label()
        ))  # fmt: skip
    first = parts[0].result
    initial = parts[0].initial_cash
    orders = _renumbered(parts)
    fills = fills_of(orders)
    trades, still_open = round_trips(fills)
    times, equity = _summed(initial, [(p.times, p.equity) for p in parts])
    _, exposure = _summed(Decimal(0), [(p.times, p.exposure) for p in parts])
    days, daily_eq = _summed(initial, [([d for d, _ in p.daily], [e for _, e in p.daily])
                                       for p in parts])  # fmt: skip
    daily: list[tuple[date, float]] = list(zip(days, daily_eq, strict=True))
    final = float(initial + sum((money(p.result.final_equity) - initial for p in parts),
                                Decimal(0)))  # fmt: skip
    cash = float(initial + sum((money(p.result.cash) - initial for p in parts), Decimal(0)))
    fees = float(sum((p.fees for p in parts), Decimal(0)))
    stats = compute_statistics(
        float(initial), final, daily, times, equity, exposure, trades, fees, still_open
    )
    stats["orders"] = len(orders)
    stats["rejected"] = sum(o.status is OrderStatus.REJECTED for o in orders)
    opened = {f.symbol: i for i, f in reversed(list(enumerate(fills)))}
    positions = sorted(
        (pos for p in parts for pos in p.result.positions),
        key=lambda pos: opened.get(str(pos["symbol"]), len(fills)),
    )
    rejections: Counter[str] = Counter()
    for p in parts:
        rejections.update(p.result.rejections)
    failed = next((p.result for p in parts if p.result.error is not None), None)
    curve: list[tuple[datetime, float]] = list(zip(times, equity, strict=True))
    return BacktestResult(
        strategy=first.strategy,
        params=first.params,
        orders=orders,
        fills=fills,
        trades=trades,
        positions=positions,
        equity_curve=curve,
        daily_equity=daily,
        final_equity=final,
        cash=cash,
        statistics=stats,
        rejections=dict(rejections),
        complete=all(p.result.complete for p in parts),
        interrupted=any(p.result.interrupted for p in parts),
        error=None if failed is None else failed.error,
        traceback=None if failed is None else failed.traceback,
    )
