"""``sessionflow live --strategy``: the strategy class, unchanged, trading through Alpaca's
Trading API (alpaca-py) on the local data and trading servers, in process, real HTTP and
websockets; a short replayed window of the demo store's 2024-12-02 session."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.data_manager.live import LiveParts
from sessionflow.events import BarSliceEvent
from sessionflow.execution_manager import Order, OrderStatus
from sessionflow.strategy.base import Strategy
from sessionflow.strategy.context import Context
from sessionflow.strategy.live import (
    BrokerSettings,
    LiveMoneyRefused,
    LiveStrategy,
    resolve_endpoint,
    stream_url_for,
)
from sessionflow.system_manager import Settings
from sessionflow.testing.feed_replay import LOCAL_KEY, LOCAL_SECRET
from sessionflow.time_provider.live_clock import WallTimeClock
from tests.live_trading_support import Trading, live_settings, trade, venue
from tests.strategies import Crossover
from tests.test_feed_server import CLI, ROOT, WAIT, Lines, _env

SYMBOLS = ["AAPL", "MSFT", "NVDA", "QQQ", "SPY"]
RATE = 120.0  # replay speed: a minute is half a second


def _live_store(tmp_path: Path, demo_store_path: Path) -> Path:
    """The live run's own store, holding the demo store's trailing days for warm-up."""
    path = tmp_path / "live.duckdb"
    shutil.copyfile(demo_store_path, path)
    return path


def test_the_crossover_trades_live_on_the_local_servers(
    tmp_path: Path, demo_store_path: Path
) -> None:
    with venue(demo_store_path, SYMBOLS, time(9, 33), RATE) as v:
        settings = live_settings(v, _live_store(tmp_path, demo_store_path), SYMBOLS)
        run = trade(v, settings, Crossover)
        assert run.wait_for(lambda ups: any(o.status is OrderStatus.FILLED for o, _ in ups))
        result = run.stop()
        client = run.run.broker.client
        venue_orders = client.get_orders(filter=_all())
    filled = [o for o in result.orders if o.status is OrderStatus.FILLED]
    assert filled and result.fills
    first = filled[0]
    at_venue = {o.client_order_id: o for o in venue_orders}
    assert at_venue[f"t1-{first.client_order_id}"].status == "filled"
    assert first.submitted_at >= v.clock.start  # decided on the live bars
    assert result.fills[0].time > first.submitted_at  # filled on a later bar
    pf = run.run.system.portfolio
    assert pf.position(first.symbol).quantity == sum(
        f.signed_quantity for f in result.fills if f.symbol == first.symbol
    )


class BuyAndRest(Strategy):
    """At the first bar: a market buy, a far limit buy that rests, and one order above
    the order value limit; every order update is kept."""

    params: ClassVar[dict[str, Any]] = {"symbol": "AAPL", "quantity": 5, "big": 200}

    def on_start(self, ctx: Context) -> None:
        self.seen: list[tuple[str, OrderStatus, str | None]] = []

    def on_bars(self, ctx: Context, event: BarSliceEvent) -> None:
        if self.seen:
            return
        sym = ctx.params["symbol"]
        last = ctx.history(sym)[-1].close
        ctx.buy(sym, ctx.params["quantity"])
        ctx.buy(sym, 1, limit=round(last / 2, 2))
        ctx.buy(sym, ctx.params["big"])

    def on_order(self, ctx: Context, order: Order) -> None:
        self.seen.append((order.id, order.status, order.reason))


def _bought(ups: list[tuple[Order, Any]]) -> bool:
    return any(o.id == "o-1" and o.status is OrderStatus.FILLED for o, _ in ups)


@pytest.mark.parametrize("flatten", [False, True])
def test_stop_cancels_open_orders_and_flatten_closes_positions(
    tmp_path: Path, demo_store_path: Path, flatten: bool
) -> None:
    with venue(demo_store_path, ["AAPL"], time(9, 33), RATE) as v:
        settings = live_settings(v, tmp_path / "live.duckdb", ["AAPL"], max_order_value=10_000)
        run = trade(v, settings, BuyAndRest, flatten_on_stop=flatten)
        assert run.wait_for(_bought)
        result = run.stop()
        client = run.run.broker.client
        venue_orders = {o.client_order_id: o for o in client.get_orders(filter=_all())}
        venue_positions = {p.symbol: int(p.qty) for p in client.get_all_positions()}
    summary = run.run.stop_summary
    resting = result.orders[1]
    assert resting.status is OrderStatus.CANCELLED
    assert venue_orders["t1-o-2"].status == "canceled"
    assert (summary.cancel_sent, summary.still_open) == (1, 0)
    big = result.orders[2]
    assert big.status is OrderStatus.REJECTED
    assert (big.reason or "").startswith("max_order_value: buy 200 AAPL")
    assert "t1-o-3" not in venue_orders  # refused before anything was sent
    strategy = run.run.runner.strategy
    assert isinstance(strategy, BuyAndRest)
    assert ("o-3", OrderStatus.REJECTED, big.reason) in strategy.seen  # via on_order
    assert result.rejections == {"max_order_value": 1}
    pf = run.run.system.portfolio
    if flatten:
        assert summary.flatten_sent == 1 and summary.flatten_unfilled == 0
        assert pf.position("AAPL").quantity == 0 and venue_positions == {}
        assert summary.positions_left == {}
    else:
        assert pf.position("AAPL").quantity == 5 == venue_positions["AAPL"]
        assert summary.positions_left == {"AAPL": 5}


def _all() -> Any:
    from alpaca.trading.enums import QueryOrderStatus
    from alpaca.trading.requests import GetOrdersRequest

    return GetOrdersRequest(status=QueryOrderStatus.ALL)


def _settings(**live: Any) -> Settings:
    return Settings.load(mode="live", symbols=["AAPL"], live=live)


def test_paper_is_the_default_and_live_money_needs_the_option_and_the_variable() -> None:
    paper = resolve_endpoint(_settings(), BrokerSettings(), {})
    assert (paper.kind, paper.url) == ("paper", "https://paper-api.alpaca.markets")
    with pytest.raises(LiveMoneyRefused, match="SESSIONFLOW_LIVE_MONEY is not 'yes'"):
        resolve_endpoint(_settings(), BrokerSettings(live_money=True), {})
    with pytest.raises(LiveMoneyRefused, match="is Alpaca's live-money endpoint"):
        resolve_endpoint(_settings(trading_url="https://api.alpaca.markets"), BrokerSettings(),
                         {"SESSIONFLOW_LIVE_MONEY": "yes"})  # fmt: skip
    money = resolve_endpoint(
        _settings(), BrokerSettings(live_money=True), {"SESSIONFLOW_LIVE_MONEY": "yes"}
    )
    assert (money.kind, money.url) == ("live money", "https://api.alpaca.markets")
    local = resolve_endpoint(_settings(trading_url="http://127.0.0.1:9"), BrokerSettings(), {})
    assert (local.kind, local.stream_url) == ("paper", "ws://127.0.0.1:9/stream")
    assert stream_url_for("https://paper-api.alpaca.markets") == (
        "wss://paper-api.alpaca.markets/stream")  # fmt: skip


def test_the_cli_refuses_live_money_without_the_variable_in_one_line(tmp_path: Path) -> None:
    strategy = Path(__file__).with_name("strategies.py")
    env = {"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s", "SESSIONFLOW_LIVE_MONEY": ""}
    args = ["live", "--symbols", "AAPL", "--store", str(tmp_path / "x.duckdb"),
            "--strategy", f"{strategy}:Crossover", "--live-money"]  # fmt: skip
    done = CliRunner().invoke(app, args, env=env)
    assert done.exit_code == 2
    assert done.stderr.strip() == (
        "error: live money refused: SESSIONFLOW_LIVE_MONEY is not 'yes'; it needs "
        "--live-money and SESSIONFLOW_LIVE_MONEY=yes"
    )
    assert done.stdout == ""


def test_the_cli_says_strategy_options_need_a_strategy() -> None:
    done = CliRunner().invoke(app, ["live", "--symbols", "AAPL", "--flatten-on-stop"])
    assert done.exit_code == 2
    assert "need --strategy" in done.stderr


RESTING = """
import sys
from sessionflow.strategy.base import Strategy


class Resting(Strategy):
    \"\"\"One far limit buy at the first bar, resting at the venue; says each update.\"\"\"

    def on_start(self, ctx):
        self.placed = False

    def on_bars(self, ctx, event):
        if not self.placed:
            self.placed = True
            ctx.buy("AAPL", 1, limit=round(ctx.history("AAPL")[-1].close / 2, 2))

    def on_order(self, ctx, order):
        print(f"strategy: {order.id} {order.status.value}", file=sys.stderr, flush=True)
"""


def test_ctrl_c_on_live_strategy_exits_130_cancels_open_orders_and_marks_results_incomplete(
    tmp_path: Path, demo_store_path: Path
) -> None:
    """A real SIGINT to ``sessionflow live --strategy`` while an order rests at the local
    trading server: the kill switch cancels it there, the results so far are printed and
    written marked incomplete (interrupted), exit 130."""
    (tmp_path / "resting.py").write_text(RESTING)
    out = tmp_path / "results"
    with venue(demo_store_path, ["AAPL"], time(9, 33), RATE, wait=4 * WAIT) as v:
        argv = [sys.executable, "-c", CLI, "live", "--strategy", f"{tmp_path}/resting.py:Resting",
                "--symbols", "AAPL", "--store", str(tmp_path / "live.duckdb"),
                "--feed-url", v.data.ws_url, "--rest-url", v.data.rest_url,
                "--trading-url", v.desk.url, "--trading-stream-url", v.desk.stream_url,
                "--clock-start", v.clock.start.isoformat(), "--clock-rate", str(RATE),
                "--run-id", "t1", "--json", "--output", str(out)]  # fmt: skip
        keys = {"APCA_API_KEY_ID": LOCAL_KEY, "APCA_API_SECRET_KEY": LOCAL_SECRET}
        with (tmp_path / "stdout").open("w") as stdout:
            proc = subprocess.Popen(argv, env={**_env(), **keys}, stdout=stdout,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
        err: list[str] = []
        resting = threading.Event()

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                err.append(line)
                if line.startswith("strategy: o-1 accepted"):
                    resting.set()
            resting.set()  # ended before the order rested: fail at once

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert resting.wait(4 * WAIT) and proc.poll() is None, "".join(err)
            proc.send_signal(signal.SIGINT)
            proc.wait(3 * WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
        reader.join(WAIT)
        at_venue = v.desk.book.order_by_client_id("t1-o-1").status
    said = "".join(err)
    assert proc.returncode == 130, said
    assert "Traceback" not in said
    assert re.search(r"^live: stop: 1 open order\(s\) cancelled", said, re.M), said
    assert "interrupted: results so far are marked incomplete" in said
    assert at_venue == "canceled"
    printed = json.loads((tmp_path / "stdout").read_text())
    written = json.loads((out / "summary.json").read_text())
    for summary in (printed, written):
        assert (summary["complete"], summary["interrupted"], summary["orders"]) == (False, True, 1)
    with (out / "orders.csv").open(newline="") as f:
        (order,) = csv.DictReader(f)
    assert (order["id"], order["status"]) == ("o-1", "cancelled")


def _free_ports(n: int) -> int:
    """A port N with N..N+n-1 free (the local servers take consecutive ports)."""
    for _ in range(50):
        with contextlib.ExitStack() as held:
            first = held.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            base = int(first.getsockname()[1])
            try:
                for k in range(1, n):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", base + k))
            except OSError:
                continue
        return base
    raise RuntimeError(f"no {n} consecutive free ports")


def _documented() -> tuple[list[str], list[str], dict[str, str]]:
    """docs/live.md's commands: the feed-server's argv, live's argv and live's variables."""
    text = (ROOT / "docs" / "live.md").read_text()
    (block,) = re.findall(r"^```sh\n(make setup demo.*?)^```", text, re.S | re.M)
    lines = block.replace("\\\n", " ").splitlines()
    server = shlex.split(next(x for x in lines if "feed-server" in x).rstrip("& "))
    words = shlex.split(next(x for x in lines if " live " in x))
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    live = [w for w in words if w not in {f"{k}={v}" for k, v in env.items()}]
    return server, live, env


def test_the_documented_command_trades_the_crossover_on_the_local_servers(
    tmp_path: Path, demo_store_path: Path
) -> None:
    server_argv, live_argv, keys = _documented()
    assert server_argv[0] == live_argv[0] == ".venv/bin/sessionflow"
    base = _free_ports(4)
    ports = {str(8765 + k): str(base + k) for k in range(4)}

    def local(argv: list[str]) -> list[str]:
        out = [sys.executable, "-c", CLI]
        for word in argv[1:]:
            for doc, free in ports.items():
                word = word.replace(f":{doc}", f":{free}") if word != doc else free
            out.append(word)
        return out

    (tmp_path / "data").mkdir()
    shutil.copyfile(demo_store_path, tmp_path / "data" / "sessionflow.duckdb")  # make demo
    shutil.copyfile(demo_store_path, tmp_path / "data" / "live.duckdb")  # the cp
    (tmp_path / "tests").mkdir()
    shutil.copyfile(ROOT / "tests" / "strategies.py", tmp_path / "tests" / "strategies.py")
    server = subprocess.Popen(local(server_argv), cwd=tmp_path, env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        Lines(server).until("waiting for a client")
        live = subprocess.run(local(live_argv), cwd=tmp_path, env={**_env(), **keys},
                              capture_output=True, text=True, timeout=WAIT * 4)  # fmt: skip
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=WAIT)
    assert live.returncode == 0, live.stderr
    assert f"live: trading endpoint: paper, http://127.0.0.1:{base + 2} (from the settings)" in (
        live.stderr)  # fmt: skip
    fills = re.search(r"│ fills\s+│\s+(\d+) │", live.stdout)
    assert fills is not None, live.stdout
    assert int(fills[1]) > 0, live.stdout
    # orders decided on the last 5m bar (published after the close) expire at once, so
    # nothing is left open at the venue for the kill switch
    assert re.search(r"^live: stop: 0 open order\(s\) cancelled$", live.stderr, re.M)


def test_refused_keys_are_one_line_naming_the_endpoint_before_anything_starts(
    tmp_path: Path,
) -> None:
    from sessionflow.strategy.live import LiveStrategy, TradingEndpointError
    from sessionflow.testing.trading_server import FakeAlpacaTrading
    from sessionflow.time_provider.live_clock import ManualClock

    secret = "sk-wrong-secret-9f2c"
    with FakeAlpacaTrading(ManualClock(datetime(2024, 12, 2, 15, tzinfo=UTC))) as desk:
        settings = Settings.load(
            mode="live", symbols=["AAPL"], store_path=tmp_path / "x.duckdb",
            live={"trading_url": desk.url, "key_id": "PKWRONG", "secret_key": secret},
        )  # fmt: skip
        with pytest.raises(TradingEndpointError) as caught:
            LiveStrategy(settings, Crossover, environ={})
    message = str(caught.value)
    assert message.startswith(f"trading endpoint {desk.url}: alpaca 401")
    assert "\n" not in message and secret not in message
    assert not (tmp_path / "x.duckdb").exists()  # no system built, no store opened


class Idle(Strategy):
    """Decides nothing: what a resumed run holds comes from the run it continues."""


def test_a_resumed_run_adopts_the_stopped_runs_orders_and_equals_the_account(
    tmp_path: Path, demo_store_path: Path
) -> None:
    """Run t1 buys AAPL and rests a limit buy, then ends (its kill switch cancels the
    limit). Run t2, told to resume t1 and t1's starting cash, adopts every t1 order with
    its fills and cancel, resends nothing, and its portfolio equals the account."""
    with venue(demo_store_path, ["AAPL"], time(9, 33), RATE) as v:
        settings = live_settings(v, _live_store(tmp_path, demo_store_path), ["AAPL"])
        first = trade(v, settings, BuyAndRest, {"big": 1})
        assert first.wait_for(lambda ups: any(o.status is OrderStatus.FILLED for o, _ in ups))
        started_with = first.run.system.settings.trading.cash
        first.stop()
        placed = len(first.run.broker.client.get_orders(filter=_all()))
        clock = WallTimeClock(v.clock.now(), v.rate, hold=True)
        bs = BrokerSettings(run_id="t2", stop_wait_s=WAIT, resume=("t1",),
                            resume_cash=started_with)  # fmt: skip
        run = LiveStrategy(settings, Idle, None, bs, parts=LiveParts(clock=clock), environ={})
        second = Trading(run).start()
        assert second.wait_for(
            lambda ups: {o.status for o, _ in ups} >= {OrderStatus.FILLED, OrderStatus.CANCELLED}
        )
        result = second.stop()
        at_venue = run.broker.client.get_orders(filter=_all())
        assert len(at_venue) == placed  # nothing resent
        assert {o.client_order_id.split("-")[0] for o in at_venue} == {"t1"}
        assert run.system.execution_manager.counters["adopted"] == placed == len(result.orders)
        bought = sum(int(float(o.filled_qty or 0)) for o in at_venue)
        assert bought >= 5
        assert run.system.portfolio.position("AAPL").quantity == bought
        assert run.broker.compare(run.system.portfolio) == []


def test_resume_options_are_refused_in_one_line_unless_given_together(tmp_path: Path) -> None:
    strategy = Path(__file__).with_name("strategies.py")
    base = ["live", "--symbols", "AAPL", "--store", str(tmp_path / "x.duckdb"),
            "--strategy", f"{strategy}:Crossover"]  # fmt: skip
    env = {"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"}
    done = CliRunner().invoke(app, [*base, "--resume-run", "sf1"], env=env)
    assert (done.exit_code, done.stdout) == (2, "")
    assert done.stderr.strip() == (
        "error: --resume-run needs --resume-cash (the cash the first run started with)"
    )
    done = CliRunner().invoke(app, [*base, "--resume-cash", "1000"], env=env)
    assert done.exit_code == 2
    assert "--resume-cash is the starting cash of a run named by --resume-run" in done.stderr
    assert not (tmp_path / "x.duckdb").exists()
