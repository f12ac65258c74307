"""``sessionflow live``: run the engine on Alpaca's live feed; same report as backtest.

Each session's table is printed when the session ends (the backtest's tables),
followed by one line of feed health: reconnects, malformed messages, REST fills,
store batches. ``--clock-start``/``--clock-rate`` run the clock from another
instant and faster, for replays against a local server (``sessionflow.testing``);
against Alpaca leave them unset. Keys come from settings or the environment and
are never printed (``--json`` shows them masked).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape

from sessionflow.cli.logs import one_line_logs
from sessionflow.cli.options import one_line, parse_symbols
from sessionflow.cli.progress import partial_report
from sessionflow.cli.render import session_tables
from sessionflow.cli.risk_options import (
    DailyLossLimitOpt,
    MaxOrdersPerMinuteOpt,
    MaxOrderValueOpt,
    MaxPositionValueOpt,
    risk_settings,
)
from sessionflow.cli.shutdown import exit_if_unjoined, quiet_stop_log
from sessionflow.data_manager.live import LiveParts
from sessionflow.events import BarSliceEvent, BatchEvent, SessionEndEvent, SessionStartEvent
from sessionflow.feeds.base import FeedError
from sessionflow.stream_coordinator.live import LiveCoordinator
from sessionflow.system_manager import Settings, build_system
from sessionflow.time_provider.live_clock import WallTimeClock

PROGRESS_S = 30.0  # wall seconds between progress lines
_IN_LINE = frozenset({"feed_items", "feed_subscriptions", "feed_forced_reconnects",
                      "feed_malformed", "from_future", "feed_max_backlog", "fill_errors",
                      "store_batches", "store_rows"})  # fmt: skip


def health_line(h: Mapping[str, int], corrected: int = 0) -> str:
    """The fixed figures, then every other counter that is not zero (``corrected`` bars,
    ``rest_rate_limited``, ``outside_session``, ...), so nothing unusual goes unsaid."""
    reconnects = max(0, h.get("feed_subscriptions", 0) - 1)
    line = (
        f"feed: {h.get('feed_items', 0):,} items, {reconnects} reconnects "
        f"({h.get('feed_forced_reconnects', 0)} forced), "
        f"{h.get('feed_malformed', 0)} malformed, {h.get('from_future', 0)} from the future, "
        f"max backlog {h.get('feed_max_backlog', 0)}; "
        f"fill errors {h.get('fill_errors', 0)}; store {h.get('store_batches', 0)} batches, "
        f"{h.get('store_rows', 0):,} rows"
    )
    others = {"corrected": corrected, **{k: v for k, v in sorted(h.items()) if k not in _IN_LINE}}
    said = [f"{k} {v:,}" for k, v in others.items() if v]
    return line + ("; " + ", ".join(said) if said else "")


class LiveProgress:
    """Plain lines on stderr while live waits and runs: it can be quiet for hours otherwise.

    One line at start, one per session start, and one every ``every_s`` wall seconds
    with the clock and the bars of the session so far (stdout keeps the report or JSON).
    """

    def __init__(self, tz: ZoneInfo, every_s: float = PROGRESS_S) -> None:
        self.tz, self.every_s = tz, every_s
        self.bars = 0
        self.last = time.monotonic()

    def say(self, text: str) -> None:
        typer.echo(f"live: {text}", err=True)

    def __call__(self, ev: BatchEvent) -> None:
        if isinstance(ev, SessionStartEvent):
            self.bars = 0
            o, c = ev.open.astimezone(self.tz), ev.close.astimezone(self.tz)
            self.say(f"session {ev.session} {o:%H:%M}-{c:%H:%M} {self.tz.key} started")
        elif isinstance(ev, BarSliceEvent):
            self.bars += len(ev.bars)
            now = time.monotonic()
            if now - self.last >= self.every_s:
                self.last = now
                at = ev.time.astimezone(self.tz)
                self.say(f"{at:%Y-%m-%d %H:%M} {self.tz.key}: {self.bars:,} bars this session")


def run_live(settings: Settings, as_json: bool, parts: LiveParts | None = None) -> int:
    """Run until ``settings.live.sessions`` sessions ended (or Ctrl-C); returns an exit code."""
    console = Console(stderr=as_json, width=max(Console().width, 110))
    system = build_system(settings, live=parts)
    coordinator = system.data_manager.coordinator
    assert isinstance(coordinator, LiveCoordinator)
    tz = system.calendar.tz
    progress = LiveProgress(tz)
    progress.say(
        f"{len(settings.symbols)} symbol(s), feed {settings.live.feed}, store "
        f"{settings.store_path}; waiting for bars (Ctrl-C stops)"
    )
    system.on_batch(progress)

    def on_batch(ev: BatchEvent) -> None:
        if isinstance(ev, SessionStartEvent):
            o, c = ev.open.astimezone(tz), ev.close.astimezone(tz)
            console.print(f"[bold]session {ev.session}[/] {o:%H:%M}-{c:%H:%M} {tz.key}")
        elif isinstance(ev, SessionEndEvent) and not as_json:
            for table in session_tables([ev.report], settings.derived_intervals):
                console.print(table)
            corrected = sum(r.corrected for r in ev.report.rows)
            console.print(health_line(coordinator.health[-1], corrected))

    system.on_batch(on_batch)
    interrupted = False
    with quiet_stop_log():
        try:
            system.run()
        except KeyboardInterrupt:
            interrupted = True
            system.stop()
            flushed = system.counters.get("flushed_on_stop", 0)
            console.print(f"stopped: {flushed:,} pending rows written to the store")
    if as_json:
        reports = [r.to_dict() for r in system.data_manager.reports]
        cut = partial_report(system) if interrupted else None
        if cut is not None:  # the session Ctrl-C cut short, marked as the replay marks it
            reports.append({**cut.to_dict(), "partial": True})
        _print_json(settings, reports, coordinator, dict(system.counters), interrupted)
    exit_if_unjoined(system)
    return 130 if interrupted else 0


def _print_json(
    settings: Settings,
    reports: list[dict[str, Any]],
    coordinator: LiveCoordinator,
    counters: dict[str, int],
    interrupted: bool,
) -> None:
    out: dict[str, Any] = {
        "settings": json.loads(settings.model_dump_json()),  # SecretStr dumps masked
        "interrupted": interrupted,
        "sessions": reports,
        "health": coordinator.health,
        "counters": counters,
    }
    typer.echo(json.dumps(out, indent=2, sort_keys=True))


def _clock_start(text: str) -> datetime:
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--clock-start {text!r} is not an ISO date and time") from None
    if start.tzinfo is None:
        raise ValueError(f"--clock-start {text!r} needs a UTC offset, e.g. -05:00")
    return start


def live(
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols")] = None,
    feed_url: Annotated[str | None, typer.Option(help="websocket URL (default Alpaca)")] = None,
    rest_url: Annotated[str | None, typer.Option(help="REST base URL (default Alpaca)")] = None,
    feed: Annotated[str | None, typer.Option(help="iex, sip or delayed_sip")] = None,
    sessions: Annotated[int, typer.Option(min=1, help="stop after this many sessions")] = 1,
    quotes: Annotated[bool, typer.Option(help="also subscribe to quotes")] = False,
    trades: Annotated[bool, typer.Option(help="also subscribe to trades")] = False,
    store: Annotated[
        str | None, typer.Option(help="DuckDB store file or postgresql://user@host:port/db")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file")] = None,
    clock_start: Annotated[
        str | None, typer.Option(help="simulation: start the clock here (ISO, with zone)")
    ] = None,
    clock_rate: Annotated[float, typer.Option(help="simulation: clock speed-up")] = 1.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the result as JSON to stdout")
    ] = False,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="trade a strategy: FILE.py:Class (docs/live.md)"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="strategy parameter NAME=VALUE (repeat for more)"),
    ] = None,
    commission: Annotated[
        str | None, typer.Option(help="commission model for the results (as for backtest)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write orders, fills, equity here")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet for --output")] = "csv",
    trading_url: Annotated[
        str | None, typer.Option(help="Trading API URL (default Alpaca's paper endpoint)")
    ] = None,
    trading_stream_url: Annotated[
        str | None, typer.Option(help="trade_updates websocket URL (default: beside it)")
    ] = None,
    live_money: Annotated[
        bool,
        typer.Option(help="trade real money (also needs SESSIONFLOW_LIVE_MONEY=yes)"),
    ] = False,
    flatten_on_stop: Annotated[
        bool, typer.Option(help="at stop also close positions with market orders")
    ] = False,
    run_id: Annotated[str | None, typer.Option(help="client order id prefix")] = None,
    resume_run: Annotated[
        list[str] | None,
        typer.Option(help="continue a killed run: its run id (repeatable; needs --resume-cash)"),
    ] = None,
    resume_cash: Annotated[
        float | None, typer.Option(help="the cash the resumed run started with")
    ] = None,
    max_order_value: MaxOrderValueOpt = None,
    max_position_value: MaxPositionValueOpt = None,
    max_orders_per_minute: MaxOrdersPerMinuteOpt = None,
    daily_loss_limit: DailyLossLimitOpt = None,
) -> None:
    """Stream live bars into per-session state; print each session's report when it ends.
    With --strategy, trade it through Alpaca's Trading API (paper by default)."""
    given = {"feed_url": feed_url, "rest_url": rest_url, "feed": feed, "sessions": sessions,
             "trading_url": trading_url, "trading_stream_url": trading_stream_url}  # fmt: skip
    live_over: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    live_over.update({k: True for k, v in (("quotes", quotes), ("trades", trades)) if v})
    trading_over: dict[str, Any] = risk_settings(
        max_order_value, max_position_value, max_orders_per_minute, daily_loss_limit
    )
    if commission is not None:
        trading_over["commission"] = commission
    try:
        if strategy is None:
            extra = (param, output, trading_url, trading_stream_url, run_id, resume_run,
                     resume_cash)  # fmt: skip
            if any(x is not None for x in extra) or trading_over or live_money or flatten_on_stop:
                raise ValueError(
                    "--param, --commission, --output, --trading-url, --live-money, "
                    "--flatten-on-stop, --run-id, --resume-run, --resume-cash and the risk "
                    "limits need --strategy"
                )
        settings = Settings.load(
            config,
            mode="live",
            store_path=store,
            symbols=parse_symbols(symbols),
            live=live_over,
            trading=trading_over or None,
        )
        clock = None
        if clock_start is not None or clock_rate != 1.0:
            start = _clock_start(clock_start) if clock_start else None
            clock = WallTimeClock(start, clock_rate, hold=True)  # runs once connected
        if strategy is not None:
            from sessionflow.cli.live_strategy import StrategyOptions, run_strategy

            opts = StrategyOptions(strategy, param or [], output, fmt, live_money,
                                   flatten_on_stop, run_id, tuple(resume_run or ()),
                                   resume_cash)  # fmt: skip
            with one_line_logs():
                run_strategy(settings, opts, as_json, LiveParts(clock=clock))
            return
        with one_line_logs():
            code = run_live(settings, as_json, LiveParts(clock=clock))
    except (FeedError, ValueError, FileNotFoundError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {escape(one_line(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    if code:
        raise typer.Exit(code)
