"""``sessionflow feed-server``: try live mode offline, replaying a stored session.

Runs the local Alpaca-protocol server (``sessionflow.testing``) on 127.0.0.1 and
prints what to pass to ``sessionflow live``: the URLs, dummy keys and clock
options. ``--trading`` serves Alpaca's Trading API beside it on the same replay
clock, its orders filled on the replayed bars by the backtest's fill model.
Ctrl-C stops it (exit 0: that is how a server is meant to end).
"""

from __future__ import annotations

import shlex
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from sessionflow.cli.options import calendar_option, one_line, parse_symbols
from sessionflow.store import StoreName, is_url, open_store
from sessionflow.system_manager import Settings
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.testing.feed_replay import (
    LOCAL_KEY,
    LOCAL_SECRET,
    ReplayClock,
    ReplayPlan,
    parse_from,
    plan_replay,
    start_replay,
)
from sessionflow.testing.trading_book import TradingBook
from sessionflow.testing.trading_server import FakeAlpacaTrading
from sessionflow.time_provider import ExchangeCalendar

_POLL_S = 0.5  # how often the waits below return to notice Ctrl-C


def _say(text: str) -> None:
    print(text, flush=True)  # a pipe reader (a test, a script) sees each line at once


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def feed_server(
    symbols: Annotated[str, typer.Option(help="comma-separated symbols to replay")],
    session: Annotated[str, typer.Option(help="the session to replay, YYYY-MM-DD")],
    store: Annotated[
        str | None,
        typer.Option("--store", help="store to read: DuckDB file or postgresql:// URL"),
    ] = None,
    port: Annotated[
        int, typer.Option(help="websocket port (REST on port+1); 0 lets the OS choose")
    ] = 0,
    speed: Annotated[float, typer.Option(help="clock speed-up: 1 real time, 60 = 60x")] = 1.0,
    start: Annotated[
        str | None,
        typer.Option("--from", help="exchange-local HH:MM to stream from (default: open - 1m)"),
    ] = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    trading: Annotated[
        bool,
        typer.Option(
            "--trading",
            help="also serve Alpaca's Trading API (orders fill on the replayed bars;"
            " with --port, REST on port+2 and its stream on port+3)",
        ),
    ] = False,
    cash: Annotated[float, typer.Option(help="--trading: the account's starting cash")] = 100_000.0,
) -> None:
    """Serve one stored session over the Alpaca protocol, so that live mode runs offline."""
    try:
        names = parse_symbols(symbols) or []
        day = date.fromisoformat(session) if session else None
        if day is None:
            raise ValueError("--session is empty")
        if not speed > 0:
            raise ValueError(f"--speed {speed:g}: must be a positive speed-up (1 = real time)")
        top = 65532 if trading else 65534
        if not 0 <= port <= top:
            raise ValueError(f"--port {port}: use 0 or 1..{top} (REST takes port+1)")
        if not cash > 0:
            raise ValueError(f"--cash {cash:g}: must be positive")
        frm = parse_from(start)
        cal = calendar_option(calendar)
    except ValueError as exc:
        raise _fail(one_line(exc)) from None
    path = store or Settings.load().store_path
    db = open_store(path, read_only=True)
    try:
        plan = plan_replay(db, cal, names, day, frm)
    except ValueError as exc:
        raise _fail(one_line(exc)) from None
    finally:
        db.close()  # everything is in memory: the store is free for other commands
    clock = ReplayClock(plan.start, speed)
    server = FakeAlpaca(LOCAL_KEY, LOCAL_SECRET, ws_port=port, rest_port=port + 1 if port else 0)
    desk = None
    if trading:
        book = TradingBook(Decimal(repr(cash)), calendar=cal)
        ports = {"ws_port": port + 3, "rest_port": port + 2} if port else {}
        desk = FakeAlpacaTrading(clock, book, key=LOCAL_KEY, secret=LOCAL_SECRET, **ports)
        desk.add_bars(plan.bars)
    try:
        server.start()
        if desk is not None:
            desk.start().run_clock()
    except OSError as exc:
        server.close()
        if desk is not None:
            desk.close()
        last = port + (3 if trading else 1)
        raise _fail(f"cannot listen on 127.0.0.1 ports {port}..{last}: {exc.strerror}") from None
    try:
        _announce(plan, server, names, speed, cal, path)
        if desk is not None:
            _say(f"trading REST {desk.url}  stream {desk.stream_url} (cash {cash:,.2f}):")
            _say(f"  TradingClient(key, secret, url_override={desk.url!r})")
            _say(f"  to trade a strategy, add to the live command: --trading-url {desk.url} "
                 f"--trading-stream-url {desk.stream_url} --strategy FILE.py:Class")  # fmt: skip
        _serve(server, plan, speed, clock, desk)
    except KeyboardInterrupt:
        _say("stopped")
    finally:
        server.close()
        if desk is not None:
            desk.close()


def _announce(
    plan: ReplayPlan,
    server: FakeAlpaca,
    names: list[str],
    speed: float,
    cal: ExchangeCalendar,
    store: StoreName,
) -> None:
    s = plan.session
    o, c = s.open.astimezone(cal.tz), s.close.astimezone(cal.tz)
    _say(f"feed-server: {s.date} ({cal.name} {o:%H:%M}-{c:%H:%M} {cal.tz.key}), "
         f"{', '.join(names)}: {len(plan.bars):,} stored bars, streaming from "
         f"{plan.start:%H:%M} at {speed:g}x")  # fmt: skip
    _say(f"websocket {server.ws_url}  REST {server.rest_url}")
    _say("dummy keys (only this server accepts them), for the shell that runs live:")
    _say(f"  export APCA_API_KEY_ID={LOCAL_KEY} APCA_API_SECRET_KEY={LOCAL_SECRET}")
    live = ["sessionflow", "live", "--symbols", ",".join(names), "--feed-url", server.ws_url,
            "--rest-url", server.rest_url, "--clock-start", plan.start.isoformat(),
            "--clock-rate", f"{speed:g}", "--sessions", "1",
            "--store", _live_store(store)]  # fmt: skip
    _say("then run (its clock starts at --clock-start; start it promptly):")
    _say(f"  {shlex.join(live)}")
    _say("waiting for a client (Ctrl-C to stop)")


def _live_store(store: StoreName) -> str:
    """Where the suggested live run writes: beside a DuckDB store, never into a server's."""
    if is_url(store):
        return "live-replay.duckdb"
    return str(Path(store).with_name("live-replay.duckdb"))


def _serve(
    server: FakeAlpaca,
    plan: ReplayPlan,
    speed: float,
    clock: ReplayClock,
    desk: FakeAlpacaTrading | None,
) -> None:
    ready = None if desk is None else lambda: desk.wait_listeners(1, 0)
    replay = None
    while replay is None:
        replay = start_replay(server, plan, speed, timeout=_POLL_S, clock=clock, ready=ready)
    _say("client subscribed: streaming")
    while True:
        try:
            replay.result(timeout=_POLL_S)
            break
        except TimeoutError:
            continue
    _say(f"replayed {len(plan.streamed):,} bars; still answering REST (Ctrl-C to stop)")
    idle = threading.Event()
    while not idle.wait(_POLL_S):
        pass
