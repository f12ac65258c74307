"""Reconciliation: what the venue says happened, merged once into what the run applied.

Why: ``trade_updates`` is not replayed to a connection that comes back (Alpaca's REST
is the record), a submit can time out without saying whether it landed, and a killed
run forgets everything. So the live broker reads the venue's state over REST when its
stream starts listening (first start and every reconnect) and merges it, on the
coordinator thread, by these rules:

- **Which orders are ours.** An order is this run's when its ``client_order_id`` starts
  with the run's prefix (``{run_id}-``; a replacement is ``...-rN`` of the same order);
  a resumed run's prefixes (``resume=``) make a previous run's orders ours too: they are
  adopted, given to the ExecutionManager as orders it knows (``ExecutionManager.adopt``),
  and followed like this run's. Any other order (another run's, a manual one) is never
  applied; its fills are counted (``foreign_fill``).
- **Submits whose fate is unknown** (``unresolved``: timed out and the lookup failed
  too) are looked up by client id before anything is sent again: found, linked; not at
  the venue (404), sent once more with the same client id (the venue refuses a second
  copy with 422, so it cannot be doubled).
- **Transitions** are applied once each: accepted once (a replacement's new terms once),
  then the fills, then a close (canceled, expired, rejected) once, from the venue's
  order as REST shows it now.
- **Fills** come from the account's FILL activities since the oldest order still open
  here (all of them for a resumed run), in execution order, and are applied once each,
  keyed by (venue order id, cumulative quantity after the execution). A stream fill
  carries the same key (its order's ``filled_qty``), so a fill heard on the stream and
  read over REST is one fill, whichever comes first.
- **Order of application.** The merge runs where the stream was when it started
  listening again: stream updates queued after that point wait until the snapshot is
  merged, so fills are applied in the venue's execution order (average prices depend
  on it).
- **What is compared** (``differences``): per symbol the quantity and average entry
  price (to the venue's 4 decimals), and the cash to the cent, between a portfolio and
  the account. A run's portfolio equals the account when the account holds only this
  run's (and the resumed runs') orders and the portfolio started with the account's cash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient

from sessionflow.execution_manager.orders import (
    PRICE_PLACES,
    Order,
    OrderType,
    Side,
    TimeInForce,
)
from sessionflow.portfolio import Portfolio

if TYPE_CHECKING:
    from sessionflow.execution_manager.alpaca_broker import AlpacaBroker

log = logging.getLogger(__name__)

Json = dict[str, Any]
ORDER_PAGE = 500  # GET /v2/orders limit
ACTIVITY_PAGE = 100  # GET /v2/account/activities page_size maximum
_REPLACEMENT = re.compile(r"-r\d+$")


def when(stamp: str | None) -> datetime | None:
    return None if not stamp else datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def fill_key(venue_order_id: str, cum_qty: object) -> tuple[str, str]:
    """One execution: its order and the order's filled quantity right after it."""
    return str(venue_order_id), format(Decimal(str(cum_qty)).normalize(), "f")


def base_client_id(client_id: str) -> str:
    """The client id an order was first sent with (a replacement adds ``-rN``)."""
    return _REPLACEMENT.sub("", client_id)


@dataclass
class Wanted:
    """What a read must cover, copied from the broker on the reading thread."""

    open_ids: dict[str, datetime | None]  # current venue ids of orders open here -> placed at
    unresolved: list[str]  # client ids
    resume: tuple[str, ...]  # prefixes ("run6-") whose orders are to be adopted


@dataclass
class Snapshot:
    """The venue's state as one read saw it."""

    orders: dict[str, Json] = field(default_factory=dict)  # ours, by venue id
    adopt: list[list[Json]] = field(default_factory=list)  # resumed orders: replacement chains
    found: dict[str, Json | None] = field(default_factory=dict)  # unresolved cid -> order
    fills: list[Json] = field(default_factory=list)  # FILL activities, execution order
    positions: list[Json] = field(default_factory=list)
    account: Json = field(default_factory=dict)
    at: datetime | None = None  # the venue's clock when read (GET /v2/clock)


def read(client: TradingClient, wanted: Wanted, prefix: str) -> Snapshot:
    """Read what ``wanted`` needs (REST only; the broker's state is not touched)."""
    snap = Snapshot(at=when(_get(client, "/clock").get("timestamp")))
    mine = (prefix, *wanted.resume)
    for o in _orders(client, "open"):
        if str(o.get("client_order_id", "")).startswith(mine):
            snap.orders[o["id"]] = o
    for vid in wanted.open_ids:
        if vid not in snap.orders:
            snap.orders[vid] = _get(client, f"/orders/{vid}")
    for cid in wanted.unresolved:
        try:
            snap.found[cid] = _get(client, "/orders:by_client_order_id", {"client_order_id": cid})
        except APIError as err:
            if err.status_code != 404:
                raise
            snap.found[cid] = None
    if wanted.resume:
        chains: dict[str, list[Json]] = {}
        for o in _orders(client, "all"):
            cid = str(o.get("client_order_id", ""))
            if cid.startswith(wanted.resume):
                chains.setdefault(base_client_id(cid), []).append(o)
                snap.orders[o["id"]] = o
        snap.adopt = list(chains.values())
    since = [t for t in wanted.open_ids.values() if t is not None]
    since += [t for o in snap.found.values() if o and (t := when(o.get("submitted_at")))]
    if wanted.resume:
        snap.fills = _fills(client, None)
    elif since:
        snap.fills = _fills(client, min(since) - timedelta(seconds=1))
    snap.positions = list(_get(client, "/positions"))
    snap.account = dict(_get(client, "/account"))
    return snap


def _get(client: TradingClient, path: str, params: Json | None = None) -> Any:
    return client.get(path, params)


def _orders(client: TradingClient, status: str) -> list[Json]:
    """Every order of ``status``, oldest first; pages of 500 by submission time (``after``
    is exclusive, so each page starts a microsecond before the last one seen)."""
    out: dict[str, Json] = {}
    after: str | None = None
    while True:
        params: Json = {"status": status, "limit": ORDER_PAGE, "direction": "asc"}
        if after is not None:
            params["after"] = after
        page = list(_get(client, "/orders", params))
        new = [o for o in page if o["id"] not in out]
        out.update((o["id"], o) for o in new)
        if len(page) < ORDER_PAGE or not new:
            if page and not new:
                log.warning("more than %d orders submitted at %s: the rest not read", ORDER_PAGE,
                            page[-1].get("submitted_at"))  # fmt: skip
            return list(out.values())
        last = when(page[-1]["submitted_at"])
        assert last is not None
        after = (last - timedelta(microseconds=1)).isoformat()


def _fills(client: TradingClient, after: datetime | None) -> list[Json]:
    """FILL activities after ``after`` (all: None), oldest first, following page tokens."""
    out: list[Json] = []
    token: str | None = None
    while True:
        params: Json = {"direction": "asc", "page_size": ACTIVITY_PAGE}
        if after is not None:
            params["after"] = after.isoformat()
        if token is not None:
            params["page_token"] = token
        page = list(_get(client, "/account/activities/FILL", params))
        out += page
        if len(page) < ACTIVITY_PAGE:
            return out
        token = page[-1]["id"]


def adopted_order(chain: Iterable[Json], prefix: str) -> tuple[Order, list[Json]]:
    """A previous run's order as the ExecutionManager will know it, and its venue orders
    (first sent, then each replacement). Its id is the venue client id (unique across
    runs); its client id is the manager's own (the prefix removed), so a resumed strategy
    that sends the same client id again gets this order back, not a second one."""
    ordered = sorted(chain, key=lambda o: (o["submitted_at"], o.get("replaces") is not None))
    first, current = ordered[0], ordered[-1]
    base = base_client_id(first["client_order_id"])
    earlier = sum(Decimal(o.get("filled_qty") or 0) for o in ordered[:-1])
    tif = current.get("time_in_force")
    at = when(first["submitted_at"])
    assert at is not None
    order = Order(
        id=base,
        client_order_id=base[len(prefix) :],
        symbol=current["symbol"],
        side=Side(current["side"]),
        quantity=int(Decimal(current.get("qty") or 0) + earlier),
        type=OrderType(current.get("type") or current.get("order_type")),
        tif=TimeInForce(tif) if tif in ("day", "gtc") else TimeInForce.DAY,
        submitted_at=at,
        limit=_price(current.get("limit_price")),
        stop=_price(current.get("stop_price")),
        updated_at=at,
    )
    return order, ordered


def _price(raw: object) -> float | None:
    return None if raw in (None, "") else float(Decimal(str(raw)))


def differences(portfolio: Portfolio, positions: Iterable[Mapping[str, Any]],
                account: Mapping[str, Any]) -> list[str]:  # fmt: skip
    """Where ``portfolio`` and the venue's positions and account differ, one line each
    (empty: equal): quantities, average entry prices to 4 decimals, cash to the cent."""
    out: list[str] = []
    venue = {str(p["symbol"]): p for p in positions}
    held = portfolio.positions
    for symbol in sorted(set(venue) | set(held)):
        pos, v = held.get(symbol), venue.get(symbol)
        qty = 0 if pos is None else pos.quantity
        vqty = Decimal(0) if v is None else Decimal(str(v["qty"]))
        if qty != vqty:
            out.append(f"{symbol}: quantity {qty} here, {vqty} at the venue")
            continue
        if pos is not None and v is not None:
            mine = (pos.cost / pos.quantity).quantize(Decimal("0.0001"))
            theirs = Decimal(str(v["avg_entry_price"])).quantize(Decimal("0.0001"))
            if mine != theirs:
                out.append(f"{symbol}: average price {mine} here, {theirs} at the venue")
    cash, vcash = portfolio.cash.quantize(Decimal("0.01")), Decimal(str(account["cash"]))
    if cash != vcash.quantize(Decimal("0.01")):
        out.append(f"cash {cash} here, {vcash} at the venue")
    return out


Adopter = Callable[[Order], None]

__all__ = [
    "Adopter",
    "Snapshot",
    "Wanted",
    "adopted_order",
    "base_client_id",
    "differences",
    "fill_key",
    "merge",
    "read",
]


def merge(broker: AlpacaBroker, snap: Snapshot) -> None:
    """Apply ``snap`` to ``broker`` by the module's rules (coordinator thread)."""
    for chain in snap.adopt:
        prefix = next(p for p in broker.resume if chain[0]["client_order_id"].startswith(p))
        broker.adopt(chain, prefix)
    for vid, o in snap.orders.items():  # ours, but its submit's answer never came
        placed = broker._by_client_id.get(o["client_order_id"])
        if placed is not None and vid not in broker._by_venue:
            broker.link(placed, vid, when(o.get("submitted_at")))
    for cid, found in snap.found.items():
        placed = broker._by_client_id.get(cid)
        if cid not in broker.unresolved or placed is None:
            continue  # settled meanwhile (the stream, a later submit)
        if found is not None:
            broker.link(placed, str(found["id"]), when(found.get("submitted_at")))
            snap.orders[str(found["id"])] = found
        else:
            broker.resend(cid, broker_now(snap))
    current = []
    for vid, o in snap.orders.items():
        placed = broker._by_venue.get(vid)
        if placed is not None and broker._venue_id.get(placed.order.id) == vid:
            current.append((placed, o))
    for placed, o in current:
        if o["status"] != "rejected":
            at = when(o.get("updated_at")) or broker_now(snap)
            broker.accepted(placed, at, replacement=o["client_order_id"] != placed.client_id)
    for a in snap.fills:
        placed = broker._by_venue.get(str(a["order_id"]))
        if placed is None:
            broker.counters["foreign_fill"] += 1
            continue
        filled_at = when(a["transaction_time"])
        assert filled_at is not None
        price = Decimal(str(a["price"])).quantize(PRICE_PLACES)
        key = fill_key(a["order_id"], a["cum_qty"])
        if broker.fill(placed, key, int(Decimal(str(a["qty"]))), price, filled_at):
            broker.counters["reconciled_fills"] += 1
    for placed, o in current:
        status = o["status"]
        if status in ("canceled", "expired", "rejected"):
            broker.close(placed, status, when(o.get("updated_at")) or broker_now(snap))
        elif status == "filled" and not placed.closed:
            broker.counters["fill_missing"] += 1
            log.warning("order %s is filled at the venue, not all its fills were read",
                        placed.client_id)  # fmt: skip


def broker_now(snap: Snapshot) -> datetime:
    """The time stamped on what a merge does without a venue time: the venue's clock."""
    return snap.at or datetime.now(UTC)
