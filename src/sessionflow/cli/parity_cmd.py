"""``sessionflow parity --strategy FILE.py:Class``: the strategy live on your stored
sessions (local data and trading servers, alpaca-py, the live broker) against its
backtest, event by event.

Prints what was compared and either ``parity: equal`` or the first difference (stdout;
``--json`` for the same as JSON). Exit codes: 0 equal; 1 a difference, or a run that
could not complete (one line on stderr); 2 a strategy, parameter or option that cannot
be used (nothing run). docs/live.md, "Parity", says what may differ and by how much.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from sessionflow.cli.options import load_settings, one_line

EXIT_DIFFERENT = 1


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def parity(
    strategy: Annotated[str, typer.Option("--strategy", help="FILE.py:Class to compare")],
    store: Annotated[
        str | None, typer.Option("--store", help="store to read (never written)")
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols")] = None,
    start: Annotated[str | None, typer.Option(help="first session, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="last session, YYYY-MM-DD")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="strategy parameter NAME=VALUE")
    ] = None,
    cash: Annotated[float | None, typer.Option(help="starting cash (default 100000)")] = None,
    commission: Annotated[str | None, typer.Option(help="as for backtest")] = None,
    slippage: Annotated[str | None, typer.Option(help="as for backtest")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the comparison as JSON")] = False,
) -> None:
    """Run a strategy live on the local servers over stored sessions and compare it with
    its backtest: orders, fills and the final portfolio (docs/live.md, Parity)."""
    from sessionflow.strategy import load_strategy, parse_params
    from sessionflow.strategy.parity_run import ParityError, run_parity
    from sessionflow.strategy.run import with_trading

    try:
        cls = load_strategy(strategy)
        params = parse_params(cls, param or [])
        settings = load_settings(config, store, symbols, start, end)
        settings = with_trading(settings, cash=cash, commission=commission, slippage=slippage)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(one_line(exc)) from None
    try:
        outcome = run_parity(settings, cls, params)
    except (ParityError, ValueError, FileNotFoundError) as exc:
        raise _fail(one_line(exc), EXIT_DIFFERENT) from None
    fills = sum(e.what[0] == "fill" for e in outcome.backtest.events)
    summary: dict[str, Any] = {
        "strategy": cls.__name__,
        "sessions": outcome.sessions,
        "bars": outcome.bars,
        "orders": [len(outcome.backtest.orders), len(outcome.live.orders)],
        "fills": fills,
        "decision_lag_seconds": outcome.decision_lag.total_seconds(),
        "equal": outcome.ok,
        "difference": None if outcome.difference is None else str(outcome.difference),
        "portfolio": outcome.backtest.portfolio,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        typer.echo(
            f"{cls.__name__}: {outcome.sessions} sessions, {outcome.bars:,} bars streamed live; "
            f"orders backtest {len(outcome.backtest.orders)}, live {len(outcome.live.orders)}; "
            f"{fills} fills; final equity {float(outcome.backtest.portfolio['equity']):,.2f}"
        )
        typer.echo("parity: equal" if outcome.ok else f"parity: {outcome.difference}")
    if not outcome.ok:
        raise typer.Exit(EXIT_DIFFERENT)
