"""``sessionflow live --strategy FILE.py:Class``: trade a strategy through Alpaca's Trading API.

The endpoint goes to stderr before anything starts (paper unless live money was asked
for twice); the results table and exit codes are ``backtest --strategy``'s
(``strategy_cmd.report``), followed on stderr by one line saying what the kill switch
did at the end. Ctrl-C stops the run as ``SystemManager.stop`` does: open orders are
cancelled (and with ``--flatten-on-stop`` positions closed), then the results so far are
printed, marked incomplete, exit 130.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from sessionflow.cli import strategy_cmd
from sessionflow.cli.live_cmd import LiveProgress
from sessionflow.cli.shutdown import quiet_stop_log
from sessionflow.data_manager.live import LiveParts
from sessionflow.results.writers import FORMATS
from sessionflow.strategy import load_strategy, parse_params
from sessionflow.strategy.live import BrokerSettings, LiveStrategy
from sessionflow.system_manager import Settings


@dataclass(frozen=True)
class StrategyOptions:
    spec: str
    params: list[str]
    output: Path | None
    fmt: str
    live_money: bool
    flatten_on_stop: bool
    run_id: str | None
    resume: tuple[str, ...] = ()
    resume_cash: float | None = None


def run_strategy(
    settings: Settings, opts: StrategyOptions, as_json: bool, parts: LiveParts
) -> None:
    """Build (every refusal a ValueError, nothing started), say the endpoint, run, report."""
    cls = load_strategy(opts.spec)
    given = parse_params(cls, opts.params)
    if opts.fmt not in FORMATS:
        raise ValueError(f"--format {opts.fmt!r}: use {' or '.join(FORMATS)}")
    if opts.resume and opts.resume_cash is None:
        raise ValueError("--resume-run needs --resume-cash (the cash the first run started with)")
    if opts.resume_cash is not None and not opts.resume:
        raise ValueError("--resume-cash is the starting cash of a run named by --resume-run")
    broker = BrokerSettings(
        opts.live_money, opts.run_id, opts.flatten_on_stop,
        resume=opts.resume, resume_cash=opts.resume_cash,
    )  # fmt: skip
    run = LiveStrategy(settings, cls, given, broker, parts=parts)
    resumed = f"; resumes {', '.join(opts.resume)}" if opts.resume else ""
    typer.echo(
        f"live: {run.endpoint.describe()}; run id {run.broker.run_id}{resumed}; "
        f"starting cash {run.system.settings.trading.cash:,.2f}",
        err=True,
    )
    run.system.on_batch(LiveProgress(run.system.calendar.tz))
    with quiet_stop_log():
        result = run.run()
    typer.echo(f"live: {run.stop_summary.line()}", err=True)
    strategy_cmd.report(result, as_json, opts.output, opts.fmt)
