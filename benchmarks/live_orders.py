"""No order lost or doubled over many orders with random disconnects.

Runs ``sessionflow.testing.order_soak.soak``: ``--orders`` orders from a strategy
(market buys and sells, far limit buys it cancels or leaves to expire) through the
ExecutionManager, the live AlpacaBroker, alpaca-py over HTTP and websocket and the local
trading server, over ``--minutes`` minutes of one replayed session, with the
``trade_updates`` connection dropped before a minute's orders with ``--drop-chance``
(seeded). At the end every order's state and filled quantity here is compared with the
venue's, the venue's orders of the run with the orders here, and the portfolio with the
account (positions, average prices, cash to the cent).

Usage: python benchmarks/live_orders.py [--orders 10000] [--minutes 200]
       [--drop-chance 0.2] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from sessionflow.testing.order_soak import soak

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, default=200)
    parser.add_argument("--drop-chance", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # each drop logs a reconnect
    r = soak(args.orders, args.seed, args.minutes, args.drop_chance, wait_s=120.0)
    out = {**dataclasses.asdict(r), "whole": r.whole, "load": os.getloadavg()[0]}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{r.orders} orders, {r.sent} reached the venue ({r.venue_orders} there; refused "
            f"{r.rejected or 0}), "
            f"{r.fills} fills; {r.drops} drops, {r.reconciles} reconciliations, "
            f"{r.reconciled_fills} fills recovered over REST; lost {len(r.lost)}, "
            f"duplicated {r.duplicated}, portfolio differences {len(r.differences)}; "
            f"{r.seconds:.1f} s (load {out['load']:.1f})"
        )
        for line in [*r.lost[:10], *r.differences]:
            print(f"  {line}", file=sys.stderr)
    return 0 if r.whole else 1


if __name__ == "__main__":
    sys.exit(main())
