"""A strategy run in the dashboard: start it, read its equity, fills, orders and positions
over REST and the WebSocket while it plays (docs/web.md), against a real demo store."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sessionflow.cli.app import app as cli_app
from sessionflow.strategy import load_strategy
from sessionflow.strategy.run import run_backtest
from sessionflow.web.trading import StrategyRun
from tests.helpers import demo_settings
from tests.web_support import demo_app, ws_messages

HERE = Path(__file__).with_name("dash_strategy.py")
STRATEGY = f"{HERE}:BuyHoldAndBid"
DAYS = ("2024-11-20", "2024-11-21")
PARAMS = {"quantity": 10, "close_out": "MSFT"}  # AAPL held, MSFT flat again


@pytest.fixture
def client(demo_store_path: Path) -> Any:
    with demo_app(demo_store_path) as (app, _), TestClient(app) as c:
        yield c


def body(**over: Any) -> dict[str, Any]:
    return {"symbols": "AAPL,MSFT", "start": DAYS[0], "end": DAYS[1], "speed": 0,
            "strategy": STRATEGY, "params": PARAMS} | over  # fmt: skip


def finished(client: TestClient) -> StrategyRun:
    run: StrategyRun | None = client.app.state.slot.run  # type: ignore[attr-defined]
    assert run is not None and run.wait(120), "the strategy run did not finish"
    return run


def test_without_a_strategy_the_trading_answers_are_empty(client: TestClient) -> None:
    assert client.get("/api/run").json() == {
        "strategy": None, "running": False, "cash": None, "summary": None,
    }  # fmt: skip
    assert client.get("/api/equity").json() == {"points": []}
    assert client.get("/api/fills").json() == {"fills": []}
    assert client.get("/api/orders").json() == {"orders": []}
    assert client.get("/api/positions").json() == {"positions": [], "cash": None}


def test_a_finished_run_answers_what_run_backtest_gives(
    client: TestClient, demo_store_path: Path
) -> None:
    assert client.post("/api/system/start", json=body()).status_code == 200
    finished(client)
    settings = demo_settings(demo_store_path, symbols=["AAPL", "MSFT"], start=DAYS[0], end=DAYS[1])
    result = run_backtest(settings, load_strategy(STRATEGY), PARAMS)
    assert result.fills and {f.side.value for f in result.fills} == {"buy", "sell"}
    points = client.get("/api/equity").json()["points"]
    assert points == [{"time": int(t.timestamp()), "equity": e} for t, e in result.equity_curve]
    since = points[-3]["time"]
    assert client.get("/api/equity", params={"since": since}).json()["points"] == points[-2:]
    fills = client.get("/api/fills").json()["fills"]
    assert sorted(fills, key=lambda f: (f["time"], f["order_id"])) == sorted(
        (f.to_dict() for f in result.fills), key=lambda f: (str(f["time"]), str(f["order_id"]))
    )
    aapl = client.get("/api/fills", params={"symbol": "aapl"}).json()["fills"]
    assert aapl and {f["symbol"] for f in aapl} == {"AAPL"}
    held = [p for p in result.positions if p["quantity"]]
    assert [p["symbol"] for p in held] == ["AAPL"]  # MSFT closed out: not listed
    assert client.get("/api/positions").json() == {
        "positions": held, "cash": result.cash,
    }  # fmt: skip
    assert client.get("/api/orders").json() == {"orders": []}  # cancelled when the run ended
    run = client.get("/api/run").json()
    assert run["strategy"]["class"] == "BuyHoldAndBid" and not run["running"]
    assert run["strategy"]["params"] == {"hold": 3, "bid_fraction": 0.5} | PARAMS
    assert run["summary"] == result.summary()
    assert run["summary"]["complete"] is True


def test_equity_fills_orders_and_positions_stream_while_the_run_plays(
    client: TestClient,
) -> None:
    with client.websocket_connect("/ws/events") as ws:
        assert ws.receive_json()["type"] == "status"
        assert client.post("/api/system/start", json=body(speed=600)).status_code == 200
        points: list[int] = []
        fills: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        positions: list[dict[str, Any]] = []
        for msg in islice(ws_messages(ws), 2000):
            if msg["type"] != "trading":
                continue
            if msg["point"] is not None:
                points.append(msg["point"]["time"])
            fills += msg["fills"]
            orders = msg.get("orders", orders)
            positions = msg["positions"]
            if {f["side"] for f in fills} == {"buy", "sell"} and orders and len(points) > 5:
                break
        assert client.get("/api/system").json()["state"] == "running"
        assert points == sorted(set(points))  # one point per instant, in time order
        assert {(o["symbol"], o["type"], o["tif"]) for o in orders} == {
            ("AAPL", "limit", "gtc"), ("MSFT", "limit", "gtc"),
        }  # fmt: skip
        assert {p["symbol"]: p["quantity"] for p in positions} == {"AAPL": 5}
        # the REST answers hold at least what was streamed so far
        assert len(client.get("/api/fills").json()["fills"]) >= len(fills)
        assert len(client.get("/api/equity").json()["points"]) >= len(points)
        open_now = client.get("/api/orders").json()["orders"]
        assert {o["status"] for o in open_now} <= {"new", "accepted"} and open_now
        assert client.get("/api/run").json()["running"] is True
        assert client.post("/api/system/stop").json()["state"] == "stopped"
        finished(client)
    summary = client.get("/api/run").json()["summary"]
    assert summary["complete"] is False and summary["interrupted"] is True
    assert client.get("/api/orders").json() == {"orders": []}  # cancelled at the stop


def test_a_failing_strategy_stops_the_run_with_its_error(client: TestClient) -> None:
    r = client.post("/api/system/start", json=body(strategy=f"{HERE}:FailsOnBar"))
    assert r.status_code == 200
    finished(client)
    summary = client.get("/api/run").json()["summary"]
    assert summary["complete"] is False and summary["interrupted"] is False
    assert "ZeroDivisionError: planted failure" in summary["error"]
    assert client.get("/api/orders").json() == {"orders": []}
    assert client.get("/api/system").json()["state"] == "stopped"


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"strategy": "nowhere.py:X"}, "no file nowhere.py"),
        ({"strategy": f"{HERE}:NotAStrategy"}, "NotAStrategy is not a sessionflow.Strategy"),
        ({"strategy": f"{HERE}:Missing"}, "has no Missing"),
        ({"strategy": "no-colon"}, "use FILE.py:Class"),
        ({"params": {"quantity": "ten"}}, "quantity='ten': not an int"),
        ({"params": {"qty": 1}}, "has no parameter 'qty'"),
        ({"strategy": None, "params": {"quantity": 1}}, "need a strategy"),
    ],
)
def test_a_bad_strategy_is_a_422_naming_the_reason(
    client: TestClient, over: dict[str, Any], reason: str
) -> None:
    r = client.post("/api/system/start", json=body(**over))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert reason in detail and "\n" not in detail
    assert client.get("/api/system").json()["state"] == "none"  # nothing started


def test_serve_refuses_a_bad_strategy_in_one_line(demo_store_path: Path) -> None:
    base = ["serve", "--store", str(demo_store_path), "--start", DAYS[0], "--end", DAYS[1]]
    cases = [
        (["--strategy", f"{HERE}:NotAStrategy"], "NotAStrategy is not a sessionflow.Strategy"),
        (["--strategy", STRATEGY, "--param", "hold=x"], "hold='x': not an int"),
        (["--param", "hold=1"], "--param needs --strategy"),
    ]
    for extra, reason in cases:
        out = CliRunner().invoke(cli_app, [*base, *extra])
        assert out.exit_code == 2, out.output
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0]
    out = CliRunner().invoke(cli_app, ["serve", "--store", str(demo_store_path),
                                       "--strategy", STRATEGY])  # fmt: skip
    assert out.exit_code == 2 and "--strategy needs --start and --end" in out.stderr
