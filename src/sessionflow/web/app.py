"""``create_app``: the dashboard for one already-built system and its store.

Nothing here is global: the app gets the SystemManager (or None, to start one
from the page), the store and the settings new backtests start from, and builds
its own event hub, store view and routes. The page and its assets (including
the pinned lightweight-charts bundle) ship inside the package: no CDN at run time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from sessionflow.store import CommandStore
from sessionflow.store.errors import StoreError
from sessionflow.system_manager import Settings, SystemManager
from sessionflow.time_provider import Clock, ExchangeCalendar, LiveClock
from sessionflow.web.api import build_router
from sessionflow.web.auth import GuardMiddleware
from sessionflow.web.control import SystemSlot, status_of
from sessionflow.web.events import MAX_CLIENTS, EventHub
from sessionflow.web.store_view import StoreView
from sessionflow.web.trading_api import build_trading_router
from sessionflow.web.ws import build_ws_router

STATIC = Path(str(files("sessionflow.web") / "static"))


def create_app(
    system: SystemManager | None,
    store: CommandStore,
    settings: Settings | None = None,
    token: str | None = None,
    hosts: frozenset[str] | None = None,
    status_interval_s: float = 0.5,
    clock: Clock | None = None,
    max_clients: int = MAX_CLIENTS,
) -> FastAPI:
    """The dashboard app. ``token`` (None: no token) guards ``/api`` and ``/ws``;
    ``hosts`` (None: any) are the Host names it answers to.

    ``clock`` (None: wall time) tells which sessions have happened; ``max_clients``
    WebSocket viewers at most (more are refused with the reason).
    On shutdown the app stops the system it drives (``stop(2.0)``).
    """
    base = settings or (system.settings if system is not None else Settings())
    hub = EventHub(status_interval_s=status_interval_s, max_clients=max_clients)
    calendar = system.calendar if system is not None else ExchangeCalendar(base.calendar)
    view = StoreView(store, calendar, clock or LiveClock())
    slot = SystemSlot(system, store, base, hub, view)
    hub.status = lambda: status_of(slot)  # read once per interval for every viewer

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        slot.stop()
        hub.close()

    app = FastAPI(title="sessionflow", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.slot = slot
    app.include_router(build_router(slot, view, token))
    app.include_router(build_trading_router(slot))
    app.include_router(build_ws_router(slot))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        """One line, as every other error (the page shows ``detail``; a list read as text)."""
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
        msg = str(first["msg"]).removeprefix("Value error, ")
        return JSONResponse({"detail": f"{where}: {msg}" if where else msg}, status_code=422)

    @app.exception_handler(StoreError)
    async def store_unusable(_: Request, exc: StoreError) -> JSONResponse:
        """The store's one line (server gone, file damaged) as a 503, not a 500 and a traceback."""
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    app.add_middleware(GuardMiddleware, token=token, hosts=hosts)
    return app
