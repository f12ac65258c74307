"""The local trading server answers alpaca-py's TradingClient and TradingStream as Alpaca does.

Every test drives the real SDK over real HTTP and websocket connections; the clock is
the replayed session's (a ManualClock), never the wall clock.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)

from sessionflow.execution_manager.fill_model import FillModel
from sessionflow.testing.trading_matcher import FillModelMatcher
from tests.trading_support import OTHER_DAY, Harness, bar, trading, utc

AAPL = [
    bar("AAPL", "14:35", 100.0, 101.0, 99.0, 100.5),
    bar("AAPL", "14:36", 100.5, 102.0, 100.0, 101.5),
    bar("AAPL", "14:37", 101.5, 101.8, 98.0, 99.0),
    bar("AAPL", "14:38", 99.0, 99.5, 97.0, 97.5),
]


def market(qty: float = 10, side: OrderSide = OrderSide.BUY, **kw: Any) -> MarketOrderRequest:
    kw.setdefault("time_in_force", TimeInForce.DAY)
    return MarketOrderRequest(symbol="AAPL", qty=qty, side=side, **kw)


def limit(
    price: float, qty: float = 10, side: OrderSide = OrderSide.BUY, **kw: Any
) -> LimitOrderRequest:
    kw.setdefault("time_in_force", TimeInForce.DAY)
    return LimitOrderRequest(symbol="AAPL", qty=qty, side=side, limit_price=price, **kw)


def refused(h: Harness, call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(APIError) as info:
        call(*args)
    return info.value.status_code, info.value.message


def test_market_order_is_accepted_new_then_filled_at_the_next_bar_open() -> None:
    with trading(AAPL, start="14:35:20") as h:
        order = h.client.submit_order(market(client_order_id="run1-1"))
        assert order.status == "new" and order.filled_qty == "0"
        new = h.next_update()
        assert (new.event, new.order.id, new.order.status) == ("new", order.id, "new")
        h.at("14:35:59")  # the 14:35 bar opened before the order: never used
        h.at("14:37")  # the 14:36 bar has closed
        fill = h.next_update()
        assert fill.event == "fill"
        assert (fill.price, fill.qty, fill.position_qty) == (100.5, 10, 10)
        assert fill.timestamp == utc("14:36") and fill.execution_id is not None
        got = h.client.get_order_by_client_id("run1-1")
        assert (got.status, got.filled_qty, got.filled_avg_price) == ("filled", "10", "100.5")
        assert got.filled_at == utc("14:36")
        pos = h.client.get_open_position("AAPL")
        assert (pos.qty, pos.side, pos.avg_entry_price, pos.current_price) == (
            "10",
            "long",
            "100.5",
            "101.5",
        )
        account = h.client.get_account()
        assert Decimal(account.cash) == Decimal(100_000) - Decimal("1005")
        assert Decimal(account.equity) == Decimal(100_000) + 10 * (
            Decimal("101.5") - Decimal("100.5")
        )


def test_limit_stop_and_stop_limit_fill_by_the_contracts_rules() -> None:
    with trading(AAPL, start="14:34:30") as h:
        at_open = h.client.submit_order(limit(100.5))  # 14:35 opens 100 <= 100.5: the open
        touched = h.client.submit_order(limit(98.5, client_order_id="touch"))  # 14:37 low 98
        stop = h.client.submit_order(
            StopOrderRequest(
                symbol="AAPL",
                qty=5,
                side=OrderSide.BUY,
                stop_price=101.9,
                time_in_force=TimeInForce.DAY,
            )
        )  # 14:36 high 102
        stop_limit = h.client.submit_order(
            StopLimitOrderRequest(
                symbol="AAPL",
                qty=5,
                side=OrderSide.SELL,
                stop_price=98.5,
                limit_price=98.2,
                time_in_force=TimeInForce.GTC,
            )
        )
        h.at("14:39")
        prices = {
            str(o.id): o.filled_avg_price
            for o in h.client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
        }
        assert prices[str(at_open.id)] == "100"
        assert prices[str(touched.id)] == "98.5"
        assert prices[str(stop.id)] == "101.9"
        # 14:37 trades through 98.5 (low 98): triggered at the stop, limit 98.2 marketable
        assert prices[str(stop_limit.id)] == "98.5"


def test_volume_cap_gives_partial_fills_until_filled() -> None:
    bars = [bar("AAPL", f"14:{m}", 100.0, 100.0, 100.0, 100.0, v=100) for m in range(35, 39)]
    with trading(bars, start="14:34:30", matcher=FillModelMatcher(FillModel(0.1))) as h:
        order = h.client.submit_order(market(qty=25))
        h.at("14:39")
        events = [u.event for u in h.updates_until("fill")]
        assert events == ["new", "partial_fill", "partial_fill", "fill"]
        assert h.client.get_order_by_id(order.id).filled_qty == "25"


def test_day_order_expires_at_the_real_early_close_and_gtc_lives_on() -> None:
    late = [bar("AAPL", "17:59", 100.0, 100.0, 100.0, 100.0)]
    with trading(late, start="17:00") as h:
        day = h.client.submit_order(limit(50))
        gtc = h.client.submit_order(limit(50, time_in_force=TimeInForce.GTC))
        h.at("17:59:59")
        assert h.client.get_order_by_id(day.id).status == "new"
        h.at("18:00")  # 13:00 ET on the day after Thanksgiving
        updates = h.updates_until("expired")
        expired = updates[-1]
        assert (expired.order.id, expired.timestamp) == (day.id, utc("18:00"))
        got = h.client.get_order_by_id(day.id)
        assert (got.status, got.expired_at) == ("expired", utc("18:00"))
        assert h.client.get_order_by_id(gtc.id).status == "new"


def test_an_order_outside_the_session_is_accepted_and_new_at_the_open() -> None:
    monday = [bar("AAPL", "14:30", 100.0, 100.0, 100.0, 100.0, day=OTHER_DAY)]
    with trading(monday, start="19:00") as h:  # Friday after the close
        order = h.client.submit_order(market())
        first = h.next_update()
        assert (first.event, first.order.status) == ("accepted", "accepted")
        assert order.expires_at == utc("21:00", OTHER_DAY)  # Monday's close
        h.at("14:30", OTHER_DAY)
        new = h.next_update()
        assert (new.event, new.timestamp) == ("new", utc("14:30", OTHER_DAY))
        h.at("14:31", OTHER_DAY)
        assert h.next_update().event == "fill"


def test_cancel_is_204_then_422_and_unknown_orders_are_404() -> None:
    with trading(AAPL) as h:
        order = h.client.submit_order(limit(50))
        h.client.cancel_order_by_id(order.id)
        assert [u.event for u in h.updates_until("canceled")] == ["new", "canceled"]
        assert h.client.get_order_by_id(order.id).status == "canceled"
        assert refused(h, h.client.cancel_order_by_id, order.id) == (
            422,
            'order is already in "canceled" state',
        )
        unknown = "00000000-0000-4000-8000-000000000000"
        assert refused(h, h.client.get_order_by_id, unknown) == (404, "order not found")
        assert refused(h, h.client.cancel_order_by_id, unknown) == (404, "order not found")
        assert refused(h, h.client.get_order_by_client_id, "nope")[0] == 404


def test_client_order_id_is_unique_and_looked_up() -> None:
    with trading(AAPL) as h:
        order = h.client.submit_order(limit(50, client_order_id="r7-000001"))
        assert refused(h, h.client.submit_order, limit(50, client_order_id="r7-000001")) == (
            422,
            "client_order_id must be unique",
        )
        h.client.cancel_order_by_id(order.id)
        # still unique after the first one ended
        assert refused(h, h.client.submit_order, limit(50, client_order_id="r7-000001"))[0] == 422
        assert h.client.get_order_by_client_id("r7-000001").id == order.id
        assert refused(h, h.client.submit_order, limit(50, client_order_id="x" * 129))[0] == 422


def test_buying_power_is_checked_and_open_orders_hold_it() -> None:
    with trading(AAPL, cash=10_000, multiplier=1) as h:
        code, message = refused(h, h.client.submit_order, limit(100, qty=101))
        assert (code, message) == (403, "insufficient buying power")
        h.client.submit_order(limit(100, qty=60))
        assert refused(h, h.client.submit_order, limit(100, qty=41))[0] == 403
        # market buys are valued 4% above the last price (100.5 after 14:35)
        h.at("14:36")
        assert refused(h, h.client.submit_order, market(qty=39))[0] == 403
        h.client.submit_order(market(qty=38))


def test_bad_parameters_are_422() -> None:
    with trading(AAPL) as h:

        def post(body: dict[str, Any]) -> tuple[int, str]:
            with pytest.raises(APIError) as info:
                h.client.post("/orders", body)
            return info.value.status_code, info.value.message

        base = {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "time_in_force": "day",
            "limit_price": "100",
        }
        assert post({**base, "limit_price": None}) == (
            422,
            "limit_price is required for limit orders",
        )
        assert post({**base, "limit_price": "100.001"}) == (
            422,
            "sub-penny increment does not fulfill minimum pricing criteria",
        )
        assert post({**base, "limit_price": "0.12345"})[0] == 422
        assert post({**base, "qty": "0"}) == (422, "qty must be > 0")
        assert post({**base, "side": "hold"})[0] == 422
        assert post({**base, "type": "iceberg"})[0] == 422
        assert post({**base, "time_in_force": "week"})[0] == 422
        assert post({**base, "type": "market"}) == (
            422,
            "limit_price is not allowed for market orders",
        )
        assert post({**base, "notional": "100"})[0] == 422
        assert post({**base, "symbol": "ZZZZ"}) == (404, "asset not found for ZZZZ")
        h.client.post("/orders", {**base, "limit_price": "0.1234"})  # 4 decimals below $1


def test_non_tradable_and_inactive_assets_are_refused() -> None:
    with trading(AAPL) as h:
        asset = h.server.book.asset("AAPL")
        asset.tradable = False
        assert refused(h, h.client.submit_order, market()) == (422, "asset AAPL is not tradable")
        asset.tradable, asset.status = True, "inactive"
        assert refused(h, h.client.submit_order, market()) == (403, "asset AAPL is not active")
        assert h.client.get_asset("AAPL").status == "inactive"


def test_fractional_rules() -> None:
    with trading(AAPL, start="14:35:30") as h:
        assert refused(
            h, h.client.submit_order, limit(90, qty=0.5, time_in_force=TimeInForce.GTC)
        ) == (422, "fractional orders must be DAY orders")
        notional = h.client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", notional=201, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
        assert (notional.notional, notional.qty) == ("201", None)
        h.at("14:37")
        filled = h.client.get_order_by_id(notional.id)
        assert (filled.status, filled.filled_qty) == ("filled", "2")  # 201 / 100.5
        assert refused(h, h.client.submit_order, market(qty=2.5, side=OrderSide.SELL)) == (
            403,
            "insufficient qty available for order (requested: 2.5, available: 2)",
        )
        h.client.submit_order(market(qty=1.5, side=OrderSide.SELL))
        h.server.book.asset("AAPL").fractionable = False
        assert refused(h, h.client.submit_order, market(qty=0.5))[0] == 422


def test_short_sale_rules() -> None:
    with trading(AAPL, start="14:35:30") as h:
        assert refused(h, h.client.submit_order, market(qty=0.5, side=OrderSide.SELL)) == (
            403,
            "fractional orders cannot be sold short",
        )
        asset = h.server.book.asset("AAPL")
        asset.easy_to_borrow = False
        assert refused(h, h.client.submit_order, market(side=OrderSide.SELL)) == (
            403,
            "asset AAPL cannot be sold short",
        )
        asset.easy_to_borrow = True
        short = h.client.submit_order(market(side=OrderSide.SELL))
        h.at("14:37")
        assert h.client.get_order_by_id(short.id).status == "filled"
        pos = h.client.get_open_position("AAPL")
        assert (pos.qty, pos.side) == ("-10", "short")
        # no flip from short to long in one order
        assert refused(h, h.client.submit_order, market(qty=11))[0] == 403
        assert h.client.get_account().short_market_value == "-1015"
    with trading(AAPL, multiplier=1) as h:
        assert refused(h, h.client.submit_order, market(side=OrderSide.SELL)) == (
            403,
            "account is not allowed to short",
        )


def test_replace_makes_a_new_order_and_the_old_one_replaced() -> None:
    with trading(AAPL, start="14:35:30") as h:
        old = h.client.submit_order(limit(90, client_order_id="a"))
        new = h.client.replace_order_by_id(
            old.id, ReplaceOrderRequest(limit_price=101, client_order_id="b")
        )
        assert (new.replaces, new.limit_price, new.client_order_id) == (old.id, "101", "b")
        events = [(u.event, u.order.id) for u in h.updates_until("replaced")]
        assert events[-1] == ("replaced", old.id)
        gone = h.client.get_order_by_id(old.id)
        assert (gone.status, gone.replaced_by) == ("replaced", new.id)
        h.at("14:37")
        assert h.client.get_order_by_id(new.id).filled_avg_price == "100.5"
        assert refused(
            h, h.client.replace_order_by_id, new.id, ReplaceOrderRequest(limit_price=102)
        ) == (422, 'order is already in "filled" state')


def test_ioc_and_fok_never_rest() -> None:
    bars = [bar("AAPL", "14:36", 100.0, 100.0, 100.0, 100.0, v=100)]
    with trading(bars, start="14:35:30", matcher=FillModelMatcher(FillModel(0.5))) as h:
        ioc = h.client.submit_order(market(qty=80, time_in_force=TimeInForce.IOC))
        h.at("14:37")
        got = h.client.get_order_by_id(ioc.id)
        assert (got.status, got.filled_qty) == ("canceled", "50")
    with trading(bars, start="14:35:30", matcher=FillModelMatcher(FillModel(0.5))) as h:
        fok = h.client.submit_order(market(qty=80, time_in_force=TimeInForce.FOK))
        h.at("14:37")
        got = h.client.get_order_by_id(fok.id)
        assert (got.status, got.filled_qty) == ("canceled", "0")


def test_rate_limit_answers_429_with_the_documented_headers() -> None:
    with trading(AAPL, listen=False, server_opts={"rate_limit": 3}) as h:
        h.client._retry = 0  # the SDK retries 429 three times, 3 s apart; see it once
        h.client.get_account()
        response = h.client._session.get(
            h.server.url + "/v2/account", headers=h.client._get_default_headers()
        )
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == "1"
        h.client.get_account()
        with pytest.raises(APIError) as info:
            h.client.get_account()
        assert info.value.status_code == 429
        headers = info.value.response.headers
        assert headers["X-RateLimit-Remaining"] == "0" and int(headers["X-RateLimit-Reset"]) > 0


def test_the_sdk_retries_a_429_and_succeeds() -> None:
    with trading(AAPL, listen=False) as h:
        h.client._retry_wait = 0
        h.server.limit_rest(2, reset_in_s=1)
        assert h.client.get_account().status == "ACTIVE"
        assert h.server.rate_limited == 2


def test_bad_keys_are_401() -> None:
    from alpaca.trading.client import TradingClient

    with trading(AAPL, listen=False) as h:
        bad = TradingClient("wrong", "keys", url_override=h.server.url)
        with pytest.raises(APIError) as info:
            bad.get_account()
        assert info.value.status_code == 401


def test_positions_list_close_and_404_when_flat() -> None:
    with trading(AAPL, start="14:35:30") as h:
        assert refused(h, h.client.get_open_position, "AAPL") == (404, "position does not exist")
        h.client.submit_order(market())
        h.at("14:37")
        assert [p.symbol for p in h.client.get_all_positions()] == ["AAPL"]
        close = h.client.close_position("AAPL")
        assert (close.side, close.qty, close.type) == ("sell", "10", "market")
        h.at("14:38")
        assert h.client.get_all_positions() == []
        assert Decimal(h.client.get_account().cash) == Decimal(100_000) - 1005 + 1015


def test_list_orders_filters_and_limits() -> None:
    with trading(AAPL) as h:
        a = h.client.submit_order(limit(50))
        b = h.client.submit_order(limit(51))
        h.client.cancel_order_by_id(a.id)
        open_ = h.client.get_orders()
        assert [o.id for o in open_] == [b.id]
        closed = h.client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
        assert [o.id for o in closed] == [a.id]
        with pytest.raises(APIError) as info:
            h.client.get("/orders", {"limit": 501})
        assert info.value.status_code == 422
        canceled = h.client.cancel_orders()
        assert [(c.id, c.status) for c in canceled] == [(b.id, 200)]


def test_stream_protocol_acks_and_binary_frames() -> None:
    from websockets.sync.client import connect

    with trading(AAPL, listen=False) as h, connect(h.server.stream_url) as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        reply = json.loads(ws.recv(WAIT_S))
        assert reply == {
            "stream": "authorization",
            "data": {"status": "unauthorized", "action": "listen"},
        }
        ws.send(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {"key_id": "PKTRADE1234", "secret_key": "trade-secret-5678"},
                }
            )
        )
        frame = ws.recv(WAIT_S)
        assert isinstance(frame, bytes)
        assert json.loads(frame) == {
            "stream": "authorization",
            "data": {"status": "authorized", "action": "authenticate"},
        }
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates", "bogus"]}}))
        assert json.loads(ws.recv(WAIT_S)) == {
            "stream": "listening",
            "data": {"streams": ["trade_updates"]},
        }
        order = h.client.submit_order(limit(50))
        update = json.loads(ws.recv(WAIT_S))
        assert update["stream"] == "trade_updates"
        assert (update["data"]["event"], update["data"]["order"]["id"]) == ("new", str(order.id))


def test_stream_bad_keys_are_unauthorized_and_closed() -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with trading(AAPL, listen=False) as h, connect(h.server.stream_url) as ws:
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": "x", "secret_key": "y"}}))
        assert json.loads(ws.recv(WAIT_S))["data"]["status"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            ws.recv(WAIT_S)


WAIT_S = 10.0


def test_events_are_not_replayed_after_a_reconnect_rest_is_the_record() -> None:
    with trading(AAPL, start="14:35:30") as h:
        h.client.submit_order(limit(50, client_order_id="before"))
        assert h.next_update().order.client_order_id == "before"
        assert h.server.drop_connections() == 1
        # the SDK waits at least 0.5 s (half its 1 s minimum backoff) before reconnecting
        missed = h.client.submit_order(limit(50, client_order_id="missed"))
        assert h.server.wait_listeners(1, WAIT_S)  # the SDK reconnected and listens again
        h.client.submit_order(limit(50, client_order_id="after"))
        assert h.next_update().order.client_order_id == "after"
        assert h.updates.empty()
        assert h.client.get_order_by_client_id("missed").id == missed.id


def test_fill_activities_page_and_filter_as_documented() -> None:
    with trading(AAPL, "14:35:30", listen=False, matcher=FillModelMatcher(FillModel(0.005))) as h:
        order = h.client.submit_order(market(10))
        other = h.client.submit_order(limit(50, qty=1))
        h.at("14:38")
        rows = h.client.get("/account/activities/FILL", {"direction": "asc"})
        assert [(a["type"], a["qty"], a["cum_qty"], a["leaves_qty"], a["price"]) for a in rows] == [
            ("partial_fill", "5", "5", "5", "100.5"),
            ("fill", "5", "10", "0", "101.5"),
        ]
        first = rows[0]
        assert (first["activity_type"], first["order_id"], first["side"], first["symbol"]) == (
            "FILL", str(order.id), "buy", "AAPL")  # fmt: skip
        assert first["transaction_time"] == "2024-11-29T14:36:00.000000Z"
        assert first["id"].startswith("20241129143600000::") and first["order_status"]
        assert h.client.get("/account/activities/FILL") == rows[::-1]  # desc by default
        assert h.client.get("/account/activities", {"activity_types": "FILL,DIV"}) == rows[::-1]
        assert h.client.get("/account/activities", {"activity_types": "DIV"}) == []
        page = {"direction": "asc", "page_size": 1}
        assert h.client.get("/account/activities/FILL", page) == rows[:1]
        token = {**page, "page_token": first["id"]}
        assert h.client.get("/account/activities/FILL", token) == rows[1:]
        assert h.client.get("/account/activities/FILL", {"page_token": rows[1]["id"]}) == rows[:1]
        after = {"after": "2024-11-29T14:36:00Z"}
        assert h.client.get("/account/activities/FILL", after) == rows[1:]
        assert h.client.get("/account/activities/FILL", {"order_id": str(other.id)}) == []
        for path, params, message in [
            ("/account/activities/BOGUS", {}, "invalid activity type: BOGUS"),
            ("/account/activities/FILL", {"page_size": 101}, "invalid page_size: '101' (1 to 100)"),
            ("/account/activities/FILL", {"activity_types": "FILL"}, "activity_types cannot"),
            ("/account/activities/FILL", {"page_token": "nope"}, "invalid page_token: 'nope'"),
        ]:
            with pytest.raises(APIError) as info:
                h.client.get(path, params)
            assert info.value.status_code == 422 and message in info.value.message
