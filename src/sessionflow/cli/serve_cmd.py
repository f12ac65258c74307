"""``sessionflow serve``: the web dashboard over one store and the system it drives.

Binds 127.0.0.1 by default, where no token is needed (and only loopback Host names
are answered). Any other address needs a token: ``--token``, ``SESSIONFLOW_TOKEN``,
or one generated and printed once on stderr. With ``--start``/``--end`` (options,
config file or environment) a backtest starts at launch, playing ``--strategy
FILE.py:Class`` with its ``--param``s if given; otherwise the page starts one.
Ctrl-C stops the system and the server (exit 0).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from sessionflow.cli.options import load_settings, one_line
from sessionflow.store import CommandStore, is_url, open_store
from sessionflow.strategy import StrategyError
from sessionflow.system_manager import Settings, SystemManager, build_system
from sessionflow.web import create_app
from sessionflow.web.auth import new_token
from sessionflow.web.control import SystemSlot
from sessionflow.web.server import LOOPBACK_NAMES, is_loopback, uvicorn_config
from sessionflow.web.trading import StrategySpec

TOKEN_ENV = "SESSIONFLOW_TOKEN"
SymbolsOpt = Annotated[str | None, typer.Option(help="backtest symbols (default: all stored)")]
SpeedOpt = Annotated[float | None, typer.Option(min=0, help="0 fast, 1 real time, 60 = 60x")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _cookie_safe(token: str) -> bool:
    """Headers arrive as Latin-1 and a cookie value stops at these: such a token never matches."""
    return token.isascii() and token.isprintable() and not set(token) & set(' ",;\\')


def _check_port(host: str, port: int) -> None:
    """A taken port is one line now, not a uvicorn traceback later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise ValueError(f"--host {host}: not an address of this machine ({why})") from None
        raise ValueError(f"--port {port}: cannot listen on {host}:{port} ({why})") from None


MIN_TOKEN_CHARS = 16  # a generated token has 32


def serve(
    store: Annotated[
        str | None, typer.Option("--store", help="DuckDB file or postgresql:// URL")
    ] = None,
    host: Annotated[
        str, typer.Option(help="address to bind; anything but loopback needs a token")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV,
            show_envvar=True,
            help="token for /api and /ws (prefer the environment variable: a flag shows in ps)",
        ),
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="backtest symbols (default: all)")] = None,
    start: Annotated[
        str | None, typer.Option(help="start a backtest at launch: first session")
    ] = None,
    end: Annotated[str | None, typer.Option(help="... and last session, YYYY-MM-DD")] = None,
    speed: Annotated[
        float | None, typer.Option(min=0, help="0 fast, 1 real time, 60 = 60x")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="play a strategy in the launch backtest: FILE.py:Class"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="strategy parameter NAME=VALUE (repeat for more)"),
    ] = None,
) -> None:
    """Serve the web dashboard: charts, quality heat map, report and system controls."""
    try:
        if not 1 <= port <= 65535:
            raise ValueError(f"--port {port}: use 1..65535")
        if token is not None and not token.strip():
            raise ValueError(f"--token/{TOKEN_ENV} is empty")
        if token is not None and not _cookie_safe(token):
            raise ValueError(
                f"--token/{TOKEN_ENV}: use printable ASCII without spaces, quotes, commas, "
                "semicolons or backslashes (what an HTTP header and a cookie carry)"
            )
        if token is not None and len(token.strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"--token/{TOKEN_ENV}: use at least {MIN_TOKEN_CHARS} characters (a short "
                "token can be guessed); leave it out to have one generated"
            )
        settings = load_settings(
            config,
            store,
            symbols,
            start,
            end,
            speed=speed,
        )
        name = settings.store_path
        if not is_url(name) and not Path(name).exists():
            raise FileNotFoundError(
                f"store {name} does not exist; run `sessionflow demo` or import"
            )
        _check_port(host, port)
        if strategy is None and param:
            raise ValueError("--param needs --strategy")
        if strategy is not None and (settings.start is None or settings.end is None):
            raise ValueError("--strategy needs --start and --end (start one from the page else)")
        spec = None if strategy is None else StrategySpec.load(strategy, param or [])
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(one_line(exc)) from None
    db = open_store(name, read_only=True)  # a StoreError is one line (the command group)
    try:
        system = None if spec is not None else _launch(settings, db)
        local = is_loopback(host)
        if token is None and not local:
            token = new_token()
            typer.echo(f"token (shown once): {token}", err=True)
        app = create_app(
            system, db, settings=settings, token=token, hosts=LOOPBACK_NAMES if local else None
        )
        if system is not None:
            system.start()  # after create_app: the page's event hub sees every event
        elif spec is not None:
            _launch_strategy(app.state.slot, settings, spec)
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"sessionflow dashboard: http://{shown}:{port}/  (Ctrl-C stops)", err=True)
        server = uvicorn.Server(uvicorn_config(app, host, port, uvicorn.config.LOGGING_CONFIG))
        # uvicorn re-raises the Ctrl-C it handled; for a server that is the normal end
        with contextlib.suppress(KeyboardInterrupt):
            server.run()  # its shutdown stops the system (create_app's lifespan)
    finally:
        db.close()


def _launch_strategy(slot: SystemSlot, settings: Settings, spec: StrategySpec) -> None:
    """The strategy backtest asked for at launch, started through the page's own slot."""
    assert settings.start is not None and settings.end is not None  # checked with the options
    try:
        slot.start(settings.symbols or None, settings.start, settings.end, None, spec)
    except (ValueError, FileNotFoundError, StrategyError) as exc:
        raise _fail(one_line(exc)) from None


def _launch(settings: Settings, db: CommandStore) -> SystemManager | None:
    """The backtest asked for on the command line (or config), started; else None."""
    if settings.start is None or settings.end is None:
        return None
    if not settings.symbols:
        settings = settings.model_copy(update={"symbols": db.symbols()})
    try:
        system = build_system(settings, store=db)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(one_line(exc)) from None
    return system
