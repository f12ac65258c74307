"""Option parsing and error lines shared by the commands.

Why here: ``--symbols`` is parsed by several commands and must be normalised the
same way as every other entry point (``models.normalize_symbol``), and a settings
error must reach the user as one line, not pydantic's multi-line report.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # imported where used: ``sessionflow -h`` must not load the calendar
    from sessionflow.time_provider import ExchangeCalendar

if TYPE_CHECKING:
    from sessionflow.system_manager import Settings


def parse_day(option: str, text: str | None) -> date | None:
    """``--start``/``--end``: a YYYY-MM-DD date, or None when not given."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a YYYY-MM-DD date") from None


def load_settings(
    config: Path | None,
    store: str | None,
    symbols: str | None,
    start: str | None,
    end: str | None,
    **extra: Any,
) -> Settings:
    """Settings from a config file plus a command's store, symbol and date options (unset
    options are ignored); ValueError on a bad one."""
    from sessionflow.system_manager import Settings

    return Settings.load(
        config,
        store_path=store,
        symbols=parse_symbols(symbols),
        start=parse_day("--start", start),
        end=parse_day("--end", end),
        **extra,
    )


def parse_symbols(text: str | None, option: str = "--symbols") -> list[str] | None:
    """Comma-separated symbols, normalised; None if the option was not given."""
    if text is None:
        return None
    from sessionflow.models import SymbolError, normalize_symbol

    out: list[str] = []
    for raw in text.split(","):
        try:
            sym = normalize_symbol(raw)
        except SymbolError as exc:
            raise SymbolError(f"{option}: {exc}") from None
        if sym in out:
            raise SymbolError(f"{option}: duplicate symbol {sym!r} (given as {raw!r})")
        out.append(sym)
    return out


def one_line(exc: BaseException | str) -> str:
    """The error as one line; a settings ValidationError becomes ``field: reason; ...``."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"]) or "settings"
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
        return "settings: " + "; ".join(parts)
    return " ".join(str(exc).split())


def plural(n: int, noun: str) -> str:
    """``1 symbol``, ``2 symbols``: counts in messages read as English."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def calendar_option(name: str) -> ExchangeCalendar:
    """``--calendar``: an exchange_calendars code; an unknown one is a one-line error."""
    from sessionflow.time_provider import ExchangeCalendar

    try:
        return ExchangeCalendar(name)
    except ValueError:
        raise ValueError(
            f"--calendar {name!r}: unknown exchange calendar; use a code such as XNYS"
        ) from None


OUTPUT_FORMATS = ("csv", "json")


def output_format(path: Path | None, fmt: str | None) -> str | None:
    """``--format`` if given, else the suffix of ``--output``; None without ``--output``."""
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise ValueError(f"--format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    if path is None:
        return None
    kind = fmt or path.suffix.lower().lstrip(".")
    if kind not in OUTPUT_FORMATS:
        raise ValueError(
            f"--output {path}: cannot tell the format from the suffix; add --format csv|json"
        )
    return kind


def check_output(path: Path) -> None:
    """Fail before the work, not after it: the file's directory must exist."""
    parent = path.parent
    if not parent.is_dir():
        raise ValueError(f"--output {path}: directory {parent} does not exist")
    if path.is_dir():
        raise ValueError(f"--output {path}: is a directory")


def print_version(value: bool) -> None:
    """``--version``; importlib.metadata (tens of ms) is imported only when it is given."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("sessionflow")
        except PackageNotFoundError:
            text = "unknown"
        typer.echo(f"sessionflow {text}")
        raise typer.Exit()
