"""sessionflow: replay stored 1-minute bars session by session, import data, run live.

Run 'sessionflow COMMAND -h' for a command's options; exit codes are in docs/cli.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from sessionflow.cli import rich_help
from sessionflow.cli.errors import HELP_OPTIONS, StoreErrorGroup
from sessionflow.cli.lazy import Lazy, LazyGroup
from sessionflow.cli.options import (
    calendar_option,
    check_output,
    load_settings,
    one_line,
    output_format,
    print_version,
)
from sessionflow.cli.risk_options import (
    DailyLossLimitOpt,
    MaxOrdersPerMinuteOpt,
    MaxOrderValueOpt,
    MaxPositionValueOpt,
    risk_settings,
)

if TYPE_CHECKING:
    from sessionflow.cli.sharded import ShardOptions
    from sessionflow.session_data import SessionReport
    from sessionflow.system_manager import Settings, SystemManager


class Commands(LazyGroup):
    """Every command, built (and its module imported) only when named (cli/lazy.py).

    A new command goes here, not under ``@app.command()``: in its own module, which
    imports what it needs at its top, named as ``module:attribute`` with its help line.
    """

    def specs(self) -> tuple[Lazy, ...]:
        return (
            Lazy.of(demo),
            Lazy.of(backtest),
            Lazy.of(report),
            Lazy("import", import_app, "Import data into the store."),
            Lazy("store", "sessionflow.cli.store_cmd:store_app", "Look inside the store, copy it."),
            Lazy("export", "sessionflow.cli.export_cmd:export_app", "Export data from the store."),
            Lazy(
                "live",
                "sessionflow.cli.live_cmd:live",
                "Stream live bars into per-session state; print each session's report when it "
                "ends.\nWith --strategy, trade it through Alpaca's Trading API (paper by default).",
            ),
            Lazy(
                "fetch",
                "sessionflow.cli.fetch_cmd:fetch_app",
                "Download history from a vendor into the store.",
            ),
            Lazy(
                "check",
                "sessionflow.cli.check_cmd:check",
                "Bad input, faults, stop(), determinism and stress on a temporary store; the "
                "figures.",
            ),
            Lazy(
                "feed-server",
                "sessionflow.cli.feed_server_cmd:feed_server",
                "Serve one stored session over the Alpaca protocol, so that live mode runs "
                "offline.",
            ),
            Lazy(
                "parity",
                "sessionflow.cli.parity_cmd:parity",
                "Run a strategy live on the local servers over stored sessions and compare it with"
                "\nits backtest: orders, fills and the final portfolio (docs/live.md, Parity).",
            ),
            Lazy(
                "serve",
                "sessionflow.cli.serve_cmd:serve",
                "Serve the web dashboard: charts, quality heat map, report and system controls.",
            ),
        )


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=__doc__,
    cls=Commands,
    context_settings={"help_option_names": HELP_OPTIONS},
)
import_app = typer.Typer(
    no_args_is_help=True, help="Import data into the store.", cls=StoreErrorGroup
)


@app.callback()
def _top(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=print_version, help="print the version and exit"
        ),
    ] = False,
) -> None:
    pass


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file")]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="DuckDB store file or postgresql://user@host:port/db")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON to stdout")]
SymbolsOpt = Annotated[str | None, typer.Option(help="comma-separated symbols")]
StartOpt = Annotated[str | None, typer.Option(help="first session, YYYY-MM-DD")]
EndOpt = Annotated[str | None, typer.Option(help="last session, YYYY-MM-DD")]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="shard over a local Dask cluster of N processes (docs/scale.md)"
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="shard over the Dask scheduler at tcp://host:port"),
]
ShardSessionsOpt = Annotated[
    int | None,
    typer.Option(
        "--shard-sessions", min=1, help="sessions per shard when sharded (default: docs/scale.md)"
    ),
]
ShardSymbolsOpt = Annotated[
    int | None,
    typer.Option("--shard-symbols", min=1, help="symbols per shard when sharded (default 500)"),
]


def shard_errors() -> tuple[type[Exception], ...]:
    """What a sharded or single run reports as one line (``except shard_errors()``: the
    expression is evaluated only when an exception is raised, so Dask loads only then)."""
    from sessionflow.sharding import ClusterError, ShardError

    return (ValueError, FileNotFoundError, ClusterError, ShardError)


def build_system(settings: Settings) -> SystemManager:
    """The engine for ``settings``; imported when a command runs (test drivers replace it)."""
    from sessionflow.system_manager import build_system as build

    return build(settings)


def _warn_coverage(reports: list[SessionReport]) -> None:
    """One warning line for empty symbol-sessions; nothing stored at all: error, exit 2."""
    from sessionflow.cli.coverage import check_coverage

    try:
        warning = check_coverage(reports)
    except ValueError as exc:
        _fail(exc)
    if warning:
        typer.echo(warning, err=True)


def _fail(exc: Exception) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/] {escape(one_line(exc))}", soft_wrap=True)
    raise typer.Exit(2) from exc


def _run_backtest(
    settings: Settings, as_json: bool, shards: ShardOptions | None = None
) -> list[SessionReport]:
    """Replay with progress on stderr; after a Ctrl-C print what completed, then exit 130.

    Sharded (``--workers``/``--scheduler``) the output is the same, from merged shards.
    """
    import json

    from sessionflow.cli import progress, sharded

    if shards is not None and shards.active:
        replay, merged = sharded.run(settings, shards, as_json)
        counters = merged.counters
    else:
        system = build_system(settings)
        replay = progress.run_replay(system, as_json)
        counters = dict(system.counters)
    if not replay.interrupted:
        _warn_coverage(replay.reports)
    if as_json:
        out = {
            "settings": json.loads(settings.model_dump_json()),
            "sessions": replay.session_dicts(),
            "counters": counters,
            "interrupted": replay.interrupted,
        }
        typer.echo(json.dumps(out, indent=2, sort_keys=True))
    else:
        console = Console(width=max(Console().width, 110))
        for table in replay.tables(settings.derived_intervals):
            console.print(table)
    replay.exit_if_interrupted()
    return replay.reports


def demo(
    store: StoreOpt = None,
    speed: Annotated[float, typer.Option(min=0, help="0 = as fast as possible")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Create the demo store once (deterministic), then backtest it and print the report.

    Never writes into a store holding data the demo did not create (docs/reliability.md).
    """
    from sessionflow.demo import DEMO_END, DEMO_START, DEMO_SYMBOLS, prepare_demo_store
    from sessionflow.store.open import is_url, store_label
    from sessionflow.system_manager import Settings
    from sessionflow.time_provider import ExchangeCalendar

    try:
        default = store or Settings.load().store_path
        if is_url(default):
            raise ValueError(
                f"--store {store_label(default)}: the demo builds its own DuckDB file; "
                "copy it to PostgreSQL afterwards with `sessionflow store copy`"
            )
        ran = prepare_demo_store(Path(default), ExchangeCalendar(), store is not None)
        if ran.note:
            typer.echo(ran.note, err=True)
        settings = Settings.load(
            store_path=ran.path,
            symbols=list(DEMO_SYMBOLS),
            start=DEMO_START,
            end=DEMO_END,
            speed=speed,
        )
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    _run_backtest(settings, as_json)


def backtest(
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    speed: Annotated[
        float | None, typer.Option(min=0, help="0 fast, 1 real time, 60 = 60x")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    shard_sessions: ShardSessionsOpt = None,
    shard_symbols: ShardSymbolsOpt = None,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="run a strategy: FILE.py:Class (docs/strategies.md)"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="strategy parameter NAME=VALUE (repeat for more)"),
    ] = None,
    cash: Annotated[float | None, typer.Option(help="starting cash (default 100000)")] = None,
    commission: Annotated[
        str | None,
        typer.Option(
            help="zero, per_share:RATE[,min=M][,max=SHARE], per_order:AMOUNT or percent:PCT"
        ),
    ] = None,
    slippage: Annotated[str | None, typer.Option(help="zero, bps:N or ticks:N[,tick=SIZE]")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="with --strategy: write orders, fills, equity here"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet for --output")] = "csv",
    max_order_value: MaxOrderValueOpt = None,
    max_position_value: MaxPositionValueOpt = None,
    max_orders_per_minute: MaxOrdersPerMinuteOpt = None,
    daily_loss_limit: DailyLossLimitOpt = None,
) -> None:
    """Replay stored data session by session and report per session and symbol; with
    --strategy, trade it and print the results table (docs/strategies.md)."""
    from sessionflow.cli import sharded, strategy_cmd

    risk = risk_settings(max_order_value, max_position_value, max_orders_per_minute,
                         daily_loss_limit)  # fmt: skip
    shards = sharded.ShardOptions(workers, scheduler, shard_sessions, shard_symbols)
    try:
        shards.check_given()
        settings = load_settings(config, store, symbols, start, end, speed=speed)
        if strategy is None:
            trading = (param, cash, commission, slippage, output)
            if any(x is not None for x in trading) or risk:
                raise ValueError(
                    "--param, --cash, --commission, --slippage, --output and the risk limits "
                    "need --strategy"
                )
            _run_backtest(settings, as_json, shards)
            return
        test = strategy_cmd.prepare(
            settings, strategy, param or [], shards, output, fmt,
            cash=cash, commission=commission, slippage=slippage, **risk,
        )  # fmt: skip
        result = test.run()
    except shard_errors() as exc:
        _fail(exc)
    strategy_cmd.report(result, as_json, output, fmt)


TzOpt = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help="zone of timestamps without a UTC offset: 'exchange' or an IANA name such as UTC; "
        "required when a file has such timestamps",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option("--strict", help="any rejected row fails the import: nothing is written, exit 1"),
]
EpochOpt = Annotated[
    str | None,
    typer.Option(
        "--epoch",
        help="integer time column: its unit since 1970-01-01 UTC, s, ms, us or ns "
        "(docs/formats.md)",
    ),
]
ConflictOpt = Annotated[
    str,
    typer.Option(
        "--on-conflict",
        help="files of this command giving different values for one symbol and minute: "
        "error (write nothing), replace (later file wins) or keep (first value stays). "
        "Stored rows with other values are replaced, except with keep",
    ),
]


@import_app.command("bars")
def import_bars_cmd(
    files: Annotated[list[Path], typer.Argument(help="CSV, Parquet or DBN files")],
    symbol: Annotated[
        str | None, typer.Option(help="symbol, for files without a symbol column")
    ] = None,
    tz: TzOpt = None,
    epoch: EpochOpt = None,
    on_conflict: ConflictOpt = "error",
    store: StoreOpt = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    extended: Annotated[bool, typer.Option(help="keep 04:00-20:00 rows, flagged")] = False,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
    columns: Annotated[
        str | None,
        typer.Option(
            help="which header names hold which field, e.g. ts=window_start,symbol=ticker"
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="a vendor layout: polygon-flat, alpaca, yahoo or databento (DBN)"),
    ] = None,
    time_is: Annotated[
        str, typer.Option(help="open (default) or close: a close time is shifted back one minute")
    ] = "open",
    time_format: Annotated[
        str | None,
        typer.Option("--format", help="strptime layout of text times, e.g. '%m/%d/%Y %H:%M'"),
    ] = None,
) -> None:
    """Import 1m bars. All files are checked, then written in ONE transaction (or not at all).

    An unreadable file, a file with no importable row, a conflict or a failed write
    writes nothing (exit 1). Per file: rows new, unchanged, replaced (stored values
    changed) and rejected, with reasons.
    """
    from sessionflow.cli import import_cmd
    from sessionflow.importer import bar_job
    from sessionflow.importer.layout import layout as file_layout
    from sessionflow.store import check_policy
    from sessionflow.system_manager import Settings

    try:
        cal = calendar_option(calendar)
        zone = import_cmd.zone(tz, cal)
        unit = import_cmd.epoch(epoch, tz)
        check_policy(on_conflict)
        names = file_layout(columns, preset, unit, time_is, time_format)
    except ValueError as exc:
        _fail(exc)
    jobs = [bar_job(f, cal, symbol, extended, zone, names.epoch, names) for f in files]
    import_cmd.run(store or Settings.load().store_path, jobs, on_conflict, as_json, strict)


@import_app.command("lean")
def import_lean_cmd(
    directory: Annotated[Path, typer.Argument(help="lean-minute root or one symbol folder")],
    on_conflict: ConflictOpt = "error",
    max_unzipped_mb: Annotated[
        float | None,
        typer.Option(help="refuse a zip whose CSV expands beyond this (default: settings)"),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import LEAN minute trade/quote zips in ONE transaction; any unreadable zip writes nothing."""
    from sessionflow.cli import import_cmd
    from sessionflow.importer import ImportError_, lean_jobs
    from sessionflow.store import check_policy
    from sessionflow.system_manager import Settings

    try:
        settings = Settings.load(config, store_path=store, import_max_unzipped_mb=max_unzipped_mb)
        check_policy(on_conflict)
        limit = int(settings.import_max_unzipped_mb * 1024 * 1024)
        jobs = lean_jobs(directory, calendar_option(calendar), limit)
    except ImportError_ as exc:
        import_cmd.abort(str(exc), as_json)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    import_cmd.run(settings.store_path, jobs, on_conflict, as_json, strict)


@import_app.command("factors")
def import_factors_cmd(
    directory: Annotated[
        Path, typer.Argument(help="folder with LEAN factor_files/ and map_files/")
    ],
    store: StoreOpt = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar (ex-dates)")] = "XNYS",
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import LEAN factor files (splits, dividends) and map files (renames) in ONE transaction."""
    from sessionflow.cli import actions_cmd
    from sessionflow.system_manager import Settings

    try:
        cal = calendar_option(calendar)
    except ValueError as exc:
        _fail(exc)
    actions_cmd.run(
        store or Settings.load().store_path, actions_cmd.factors(directory, cal), strict, as_json
    )


@import_app.command("actions")
def import_actions_cmd(
    file: Annotated[Path, typer.Argument(help="CSV: symbol, ex_date, split, dividend")],
    store: StoreOpt = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar (ex-dates)")] = "XNYS",
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import corporate actions from a plain CSV in ONE transaction (dividends need stored bars)."""
    from sessionflow.cli import actions_cmd
    from sessionflow.system_manager import Settings

    try:
        cal = calendar_option(calendar)
    except ValueError as exc:
        _fail(exc)
    name = store or Settings.load().store_path
    actions_cmd.run(name, actions_cmd.actions(file, cal), strict, as_json)


def report(
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the rows as JSON")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="also write the rows to this file")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or json for --output (default: from its suffix)"),
    ] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    shard_sessions: ShardSessionsOpt = None,
    shard_symbols: ShardSymbolsOpt = None,
) -> None:
    """Backtest, then per session and symbol: quality %, gaps in exchange time, fills."""
    from sessionflow.cli import report_cmd, sharded

    shards = sharded.ShardOptions(workers, scheduler, shard_sessions, shard_symbols)
    try:
        shards.check_given()
        kind = output_format(output, fmt)
        if output is not None:
            check_output(output)
        settings = load_settings(config, store, symbols, start, end)
        if shards.active:
            reports, filled, tz = report_cmd.run_sharded_report(settings, shards)
        else:
            reports, filled, tz = report_cmd.run_report(settings)
    except shard_errors() as exc:
        _fail(exc)
    _warn_coverage(reports)
    rows = report_cmd.report_rows(reports, filled, tz)
    if as_json:
        typer.echo(report_cmd.rows_json(rows))
    else:
        report_cmd.print_report(Console(width=max(Console().width, 150)), rows)
    try:
        if output is not None and kind == "csv":
            report_cmd.write_csv(output, rows)
        elif output is not None:
            output.write_text(report_cmd.rows_json(rows) + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(ValueError(f"--output {output}: cannot write ({exc.strerror or exc})"))


def main() -> None:
    rich_help.install()
    app()


if __name__ == "__main__":
    main()
