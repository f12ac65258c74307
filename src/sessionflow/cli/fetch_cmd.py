"""``sessionflow fetch alpaca``: fill the store from Alpaca's historical REST API.

Heavy modules (alpaca-py, the store, the importer) are imported inside the command,
so ``sessionflow --help`` does not pay for them. Progress goes to stderr as one line
per window (at most every PROGRESS_S seconds, plus each rate-limit wait); stdout
holds the result (a summary, or ``--json``).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from sessionflow.fetch import FetchReport, Window

PROGRESS_S = 2.0
EXIT_REFUSED = 1  # Alpaca refused (plan, feed, keys) or failed: earlier pages are kept
EXIT_USAGE = 2

fetch_app = typer.Typer(no_args_is_help=True, help="Download history from a vendor into the store.")


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    from sessionflow.cli.options import one_line

    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a YYYY-MM-DD date") from None


def _symbols(symbols: str | None, symbols_file: Path | None) -> list[str]:
    """``--symbols A,B`` or ``--symbols-file F`` (commas or one per line, ``#`` comments)."""
    from sessionflow.cli.options import parse_symbols

    if (symbols is None) == (symbols_file is None):
        raise ValueError("give --symbols A,B or --symbols-file FILE (one of them)")
    if symbols_file is None:
        return parse_symbols(symbols) or []
    try:
        text = symbols_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--symbols-file {symbols_file}: cannot read ({exc})") from None
    parts = [p.strip() for ln in text.splitlines() for p in ln.split("#", 1)[0].split(",")]
    given = ",".join(p for p in parts if p)
    if not given:
        raise ValueError(f"--symbols-file {symbols_file}: no symbol in it")
    return parse_symbols(given, f"--symbols-file {symbols_file}") or []


class _Progress:
    """One stderr line per window at most every PROGRESS_S seconds, and the last one."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._last = 0.0
        self._t0 = time.monotonic()

    def page(self, report: FetchReport, window: Window) -> None:
        now = time.monotonic()
        last = report.windows_done == report.windows
        if self.quiet or (now - self._last < PROGRESS_S and not last):
            return
        self._last = now
        q = report.quotes
        pages = report.pages + (q.pages if q is not None else 0)
        rows = report.rows + (q.rows if q is not None else 0)
        rate = rows / max(now - self._t0, 1e-9)
        quoted = f", {q.bars:,} quote bars from {q.rows:,} quotes" if q is not None else ""
        typer.echo(
            f"fetch: window {report.windows_done}/{report.windows} "
            f"({window.sessions[0].date}..{window.sessions[-1].date}, "
            f"{len(window.symbols)} symbols), {pages} pages, {rows:,} rows "
            f"({rate:,.0f}/s), {report.imported:,} bars written{quoted}",
            err=True,
        )

    def wait(self, seconds: float) -> None:
        typer.echo(
            f"fetch: rate limited (429); waiting {seconds:.1f}s as X-RateLimit-Reset says, "
            "then resuming the same page",
            err=True,
        )


def _summary(report: FetchReport) -> str:
    parts = [
        f"{report.source}: {report.symbols} symbols x {report.sessions} sessions",
        f"{report.already} symbol-sessions already complete",
        f"{report.completed} fetched ({report.empty} without bars)",
        f"{report.pages} pages, {report.rows:,} rows: {report.new:,} new, "
        f"{report.unchanged:,} unchanged, {report.replaced:,} replaced, {report.kept:,} kept, "
        f"{sum(report.rejected.values()):,} rejected, {report.outside_hours:,} outside hours",
    ]
    if report.rejected:
        parts.append(
            "rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(report.rejected.items()))
        )
    if report.rate_limited:
        parts.append(f"rate limited {report.rate_limited}x, waited {report.rate_limit_wait_s:.1f}s")
    if report.not_closed:
        parts.append(f"{len(report.not_closed)} sessions not closed yet, not fetched")
    t = report.trades
    if t is not None:
        parts.append(
            f"trades: {t.already} symbol-sessions already complete, {t.completed} fetched, "
            f"{t.rows:,} received, {t.written:,} written, {sum(t.rejected.values()):,} rejected, "
            f"{t.outside_hours:,} outside hours"
        )
    q = report.quotes
    if q is not None:
        parts.append(
            f"quotes: {q.already} symbol-sessions already complete, {q.completed} fetched, "
            f"{q.rows:,} received, {q.folded:,} folded into {q.bars:,} quote bars "
            f"({q.new:,} new, {q.unchanged:,} unchanged, {q.replaced:,} replaced, "
            f"{q.kept:,} kept, {sum(q.bars_rejected.values()):,} rejected), "
            f"{sum(q.rejected.values()):,} rejected, {q.outside_hours:,} outside hours"
        )
    a = report.actions
    if a is not None:
        text = (
            f"corporate actions: {a.received} received, {a.new} new, {a.unchanged} unchanged, "
            f"{a.replaced} replaced, {sum(a.rejected.values())} rejected"
        )
        if a.not_modelled:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(a.not_modelled.items()))
            text += f", not modelled ({kinds})"
        parts.append(text)
    return "; ".join(parts)


def _emit(report: FetchReport | None, as_json: bool) -> None:
    if report is None:
        return
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(_summary(report))
        for line in report.rejections[:5]:
            typer.echo(f"  rejected {line}", err=True)
        if report.quotes is not None:
            for line in report.quotes.rejections[:5]:
                typer.echo(f"  quote rejected {line}", err=True)
        if report.actions is not None:
            for line in report.actions.rejections[:5]:
                typer.echo(f"  action rejected {line}", err=True)


@fetch_app.command("alpaca")
def fetch_alpaca_cmd(
    start: Annotated[str, typer.Option(help="first session, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last session, YYYY-MM-DD (inclusive)")],
    symbols: Annotated[str | None, typer.Option(help="comma-separated symbols")] = None,
    symbols_file: Annotated[
        Path | None, typer.Option(help="file of symbols (commas or one a line, # comments)")
    ] = None,
    feed: Annotated[str, typer.Option(help="iex (any plan) or sip (historical SIP)")] = "iex",
    bars: Annotated[
        bool, typer.Option(help="1m bars and corporate actions (--no-bars: only --quotes/--trades)")
    ] = True,
    quotes: Annotated[
        bool, typer.Option(help="also quotes, folded into 1m quote bars (the quotes table)")
    ] = False,
    trades: Annotated[
        bool, typer.Option(help="also every trade print, into the ticks table (large)")
    ] = False,
    extended: Annotated[bool, typer.Option(help="also 04:00-20:00 bars, flagged")] = False,
    actions: Annotated[
        bool, typer.Option(help="also splits and cash dividends (/v1/corporate-actions)")
    ] = True,
    on_conflict: Annotated[
        str, typer.Option(help="stored rows with other values: error/replace (replaced) or keep")
    ] = "error",
    rest_url: Annotated[
        str | None, typer.Option(help="REST base URL (default Alpaca's; settings live.rest_url)")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="DuckDB store file or postgresql://... URL")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    calendar: Annotated[str, typer.Option(help="exchange calendar")] = "XNYS",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Download 1m bars and corporate actions of SYMBOLS for sessions START..END.

    With --trades also every trade print (the ticks table); with --quotes also the
    quotes, folded into one-minute quote bars (the quotes table). --no-bars skips the
    bars and corporate actions.

    Each page is validated as `import bars` does and written in its own transaction:
    Ctrl-C keeps every page written; a second run fetches only symbol-sessions not yet
    complete. Keys: APCA_API_KEY_ID and APCA_API_SECRET_KEY (or settings live.key_id and
    live.secret_key).
    """
    from sessionflow.cli.errors import store_error_line
    from sessionflow.cli.import_cmd import new_store_file, remove_store_file
    from sessionflow.cli.options import calendar_option
    from sessionflow.cli.shutdown import EXIT_INTERRUPTED
    from sessionflow.feeds.alpaca_history import AlpacaHistory, HistoryFailed, HistoryRefused
    from sessionflow.feeds.credentials import AlpacaCredentials
    from sessionflow.fetch import FetchStopped, fetch_alpaca
    from sessionflow.store import check_policy, open_store
    from sessionflow.store.errors import StoreError
    from sessionflow.system_manager import Settings

    if not (bars or quotes or trades):
        _fail("--no-bars leaves nothing to fetch: add --quotes or --trades")
    try:
        names = _symbols(symbols, symbols_file)
        first, last = _day("--start", start), _day("--end", end)
        if last < first:
            raise ValueError(f"--end {end} is before --start {start}")
        cal = calendar_option(calendar)
        if not cal.sessions(first, last):
            raise ValueError(f"no {cal.name} session from {first} to {last}")
        check_policy(on_conflict)
        settings = Settings.load(config, store_path=store)
        live = settings.live
        creds = AlpacaCredentials.resolve(live.key_id, live.secret_key, os.environ)
    except ValueError as exc:
        _fail(str(exc).replace("live mode needs", "fetch needs"))
    progress = _Progress(as_json)
    try:
        client = AlpacaHistory(
            creds,
            rest_url or live.rest_url,
            feed,
            timeout_s=max(live.rest_timeout_seconds, 30.0),
            on_wait=progress.wait,
        )
    except ValueError as exc:
        _fail(str(exc))
    report: FetchReport | None = None
    code = 0
    created = new_store_file(settings.store_path)
    try:
        db = open_store(settings.store_path)
    except StoreError as exc:
        typer.echo(store_error_line(exc), err=True)
        raise typer.Exit(2) from None
    try:
        report = fetch_alpaca(
            db,
            client,
            cal,
            names,
            first,
            last,
            datetime.now(UTC),
            extended=extended,
            on_conflict=on_conflict,
            on_page=progress.page,
            actions=actions,
            trades=trades,
            quotes=quotes,
            bars=bars,
        )
    except KeyboardInterrupt as exc:
        report = _attached(exc)
        if report is not None:
            report.interrupted = True
        typer.echo(
            "interrupted: every page written so far is kept; run the same command again "
            "to fetch only what is missing",
            err=True,
        )
        code = EXIT_INTERRUPTED
    except (HistoryRefused, HistoryFailed, FetchStopped) as exc:
        report = _attached(exc)
        if report is not None:
            report.error = str(exc)
        typer.echo(f"error: {exc}; pages written before it are kept", err=True)
        code = EXIT_REFUSED
    except StoreError as exc:
        report = _attached(exc)
        typer.echo(store_error_line(exc), err=True)
        code = 2
    finally:
        wrote = db.data_version() != 0
        db.close()
        if created is not None and not wrote:
            remove_store_file(created)  # refused at once: no empty store left behind
    _emit(report, as_json)
    if code:
        raise typer.Exit(code)


def _attached(exc: BaseException) -> Any:
    return getattr(exc, "report", None)


__all__ = ["fetch_app"]
