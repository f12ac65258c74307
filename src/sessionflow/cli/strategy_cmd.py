"""``sessionflow backtest --strategy FILE.py:Class``: run it, print the results table or
JSON, write ``--output DIR``.

Exit codes: 0 done; 2 a strategy, parameter or option that cannot be used (one line,
nothing run); 1 the strategy raised (its traceback on stderr, the results so far
written and marked incomplete); 130 Ctrl-C (likewise marked incomplete).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from sessionflow.cli.sharded import ShardedBacktest, ShardOptions
from sessionflow.cli.shutdown import EXIT_INTERRUPTED
from sessionflow.results import BacktestResult, write_results
from sessionflow.results.writers import FORMATS
from sessionflow.strategy import load_strategy, parse_params
from sessionflow.strategy.loader import merged_params
from sessionflow.strategy.run import Backtest, with_trading
from sessionflow.system_manager import Settings

EXIT_STRATEGY_FAILED = 1


def prepare(
    settings: Settings,
    spec: str,
    params: list[str],
    shards: ShardOptions,
    output: Path | None,
    fmt: str,
    **trading: Any,
) -> Backtest | ShardedBacktest:
    """Everything checked before the run: raises ValueError (one line) on bad input."""
    cls = load_strategy(spec)
    given = parse_params(cls, params)
    if shards.active and not cls.per_symbol_independent:
        raise ValueError(
            f"--workers/--scheduler: {cls.__name__} does not declare "
            "per_symbol_independent = True, so its symbols cannot run apart"
        )
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: use {' or '.join(FORMATS)}")
    if output is not None and output.exists() and not output.is_dir():
        raise ValueError(f"--output {output}: exists and is not a directory")
    settings = with_trading(settings, **trading)
    t = settings.trading
    if shards.active and (t.max_orders_per_minute is not None or t.daily_loss_limit is not None):
        raise ValueError(
            "--workers/--scheduler: the order rate and daily loss limits count across all "
            "symbols, so shards cannot apply them apart"
        )
    if shards.active:
        return ShardedBacktest.of(settings, shards, spec, merged_params(cls, given))
    return Backtest(settings, cls, given)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:,.2f}"


def table(result: BacktestResult) -> Table:
    s = result.statistics
    title = f"{result.strategy} {result.params}"
    if not result.complete:
        title += (
            " (incomplete: " + ("interrupted" if result.interrupted else "strategy failed") + ")"
        )
    t = Table(title=title)
    t.add_column("statistic")
    t.add_column("value", justify="right")
    dd_when = "-"
    if s["max_drawdown_peak"]:
        dd_when = f"{s['max_drawdown_peak'][:16]} -> {s['max_drawdown_trough'][:16]}"
        dd_when += (
            f", recovered {s['max_drawdown_recovery'][:16]}"
            if s["max_drawdown_recovery"]
            else ", not recovered"
        )
    rows = [
        ("initial equity", _num(s["initial_equity"])),
        ("final equity", _num(s["final_equity"])),
        ("total return", _pct(s["total_return"])),
        ("annual return", _pct(s["annual_return"])),
        ("annual volatility", _pct(s["annual_volatility"])),
        ("Sharpe", _num(s["sharpe"])),
        ("Sortino", _num(s["sortino"])),
        ("max drawdown", _pct(s["max_drawdown"])),
        ("max drawdown dates (UTC)", dd_when),
        ("trades (round trips)", f"{s['trades']} closed, {s['open_trades']} open"),
        ("win rate", _pct(s["win_rate"])),
        ("profit factor", _num(s["profit_factor"])),
        ("exposure (time in market)", _pct(s["exposure"])),
        ("fees", _num(s["fees"])),
        ("orders", f"{s['orders']} ({s['rejected']} rejected)"),
        ("fills", str(len(result.fills))),
        ("sessions", str(s["sessions"])),
    ]  # fmt: skip
    for name, value in rows:
        t.add_row(name, value)
    return t


def report(result: BacktestResult, as_json: bool, output: Path | None, fmt: str) -> None:
    """Print, write, then exit 1/130 if the run did not complete."""
    if as_json:
        typer.echo(json.dumps(result.summary(), indent=2, sort_keys=True))
    else:
        Console(width=max(Console().width, 100)).print(table(result))
    if output is not None:
        try:
            write_results(result, output, fmt)
        except OSError as exc:
            typer.echo(f"error: --output {output}: cannot write ({exc.strerror or exc})", err=True)
            raise typer.Exit(2) from None
    if result.traceback is not None:
        sys.stderr.write(result.traceback)
        typer.echo(f"error: {result.error}; results so far are marked incomplete", err=True)
        raise typer.Exit(EXIT_STRATEGY_FAILED)
    if result.interrupted:
        typer.echo("interrupted: results so far are marked incomplete", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
