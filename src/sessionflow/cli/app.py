"""``sessionflow`` commands: demo, import, backtest."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from sessionflow.cli import check_cmd, live_cmd, report_cmd
from sessionflow.cli.errors import StoreErrorGroup
from sessionflow.cli.render import print_import, session_tables
from sessionflow.demo import DEMO_END, DEMO_START, DEMO_SYMBOLS, prepare_demo_store
from sessionflow.events import Event, SessionEndEvent
from sessionflow.importer import ImportError_, import_bars, import_lean
from sessionflow.session_data import SessionReport
from sessionflow.store import DuckDBStore
from sessionflow.system_manager import Settings, build_system
from sessionflow.time_provider import ExchangeCalendar

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, cls=StoreErrorGroup)
import_app = typer.Typer(no_args_is_help=True, help="Import data into the store.")
app.add_typer(import_app, name="import")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="DuckDB store file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
SymbolsOpt = Annotated[str | None, typer.Option(help="comma-separated symbols")]
StartOpt = Annotated[str | None, typer.Option(help="first session, YYYY-MM-DD")]
EndOpt = Annotated[str | None, typer.Option(help="last session, YYYY-MM-DD")]


def _settings(
    config: Path | None,
    store: Path | None,
    symbols: str | None,
    start: str | None,
    end: str | None,
    **extra: Any,
) -> Settings:
    """Settings from a config file plus the command's options (unset options are ignored)."""
    return Settings.load(
        config,
        store_path=store,
        symbols=symbols.split(",") if symbols else None,
        start=_day("--start", start),
        end=_day("--end", end),
        **extra,
    )


def _day(option: str, text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as exc:
        raise ValueError(f"{option} {text!r} is not a YYYY-MM-DD date ({exc})") from None


def _fail(exc: Exception) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/] {exc}")
    raise typer.Exit(2) from exc


def _run_backtest(settings: Settings, as_json: bool) -> list[SessionReport]:
    console = Console(stderr=as_json, width=max(Console().width, 110))
    system = build_system(settings)
    sessions = system.data_manager.sessions
    with Progress(
        TextColumn("[bold]backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=as_json,
    ) as progress:
        task = progress.add_task("", total=len(sessions))

        def on_event(ev: Event) -> None:
            if isinstance(ev, SessionEndEvent):
                progress.update(task, advance=1, description=str(ev.session))

        system.on_event(on_event)
        system.run()
    reports = system.data_manager.reports
    if as_json:
        out = {
            "settings": json.loads(settings.model_dump_json()),
            "sessions": [r.to_dict() for r in reports],
            "counters": dict(system.counters),
        }
        typer.echo(json.dumps(out, indent=2, sort_keys=True))
    else:
        for table in session_tables(reports, settings.derived_intervals):
            console.print(table)
    return reports


@app.command()
def demo(
    store: StoreOpt = None,
    speed: Annotated[float, typer.Option(help="0 = as fast as possible")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Create the demo store once (deterministic), then backtest it and print the report.

    Never writes into a store holding data the demo did not create (docs/reliability.md).
    """
    ran = prepare_demo_store(store or Settings().store_path, ExchangeCalendar(), store is not None)
    if ran.note:
        typer.echo(ran.note, err=True)
    settings = Settings.load(
        store_path=ran.path, symbols=list(DEMO_SYMBOLS), start=DEMO_START, end=DEMO_END, speed=speed
    )
    _run_backtest(settings, as_json)


@app.command()
def backtest(
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    speed: Annotated[float | None, typer.Option(help="0 fast, 1 real time, 60 = 60x")] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay stored data session by session and report per session and symbol."""
    try:
        _run_backtest(_settings(config, store, symbols, start, end, speed=speed), as_json)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)


@import_app.command("bars")
def import_bars_cmd(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files")],
    symbol: Annotated[
        str | None, typer.Option(help="symbol, if the file has no symbol column")
    ] = None,
    store: StoreOpt = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    extended: Annotated[bool, typer.Option(help="keep 04:00-20:00 rows, flagged")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import 1m bars; each file is validated then written in one transaction."""
    path = store or Settings().store_path
    cal = ExchangeCalendar(calendar)
    db = DuckDBStore(path)
    console = Console()
    failed = False
    results = []
    try:
        for f in files:
            try:
                report = import_bars(db, f, cal, symbol, keep_extended=extended)
            except ImportError_ as exc:
                failed = True
                results.append({"file": str(f), "error": str(exc)})
                if not as_json:
                    console.print(f"[red]aborted:[/] {exc} (store unchanged)")
                continue
            results.append(report.to_dict())
            if not as_json:
                print_import(console, report)
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    if failed:
        raise typer.Exit(1)


@import_app.command("lean")
def import_lean_cmd(
    directory: Annotated[Path, typer.Argument(help="lean-minute root or one symbol folder")],
    store: StoreOpt = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    as_json: JsonOpt = False,
) -> None:
    """Import LEAN minute trade/quote zips; a corrupt zip aborts before anything is written."""
    db = DuckDBStore(store or Settings().store_path)
    try:
        reports = import_lean(db, directory, ExchangeCalendar(calendar))
    except ImportError_ as exc:
        if as_json:
            typer.echo(json.dumps({"error": str(exc)}, indent=2))
        else:
            Console(stderr=True).print(f"[red]aborted:[/] {exc} (store unchanged)")
        raise typer.Exit(1) from exc
    finally:
        db.close()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], indent=2))
        return
    console = Console(width=max(Console().width, 110))
    for report in reports:
        print_import(console, report)


@app.command()
def report(
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="write rows as CSV")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="write rows as JSON")] = None,
) -> None:
    """Backtest, then per session and symbol: quality %, gaps in exchange time, fills."""
    try:
        reports, filled, tz = report_cmd.run_report(_settings(config, store, symbols, start, end))
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    rows = report_cmd.report_rows(reports, filled, tz)
    report_cmd.print_report(Console(width=max(Console().width, 150)), rows)
    if csv_file:
        report_cmd.write_csv(csv_file, rows)
    if json_file:
        report_cmd.write_json(json_file, rows)


app.command()(live_cmd.live)
app.command()(check_cmd.check)


def main() -> None:
    app()
