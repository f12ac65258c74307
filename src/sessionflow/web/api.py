"""REST endpoints: the store's read answers and the system's controls (docs/web.md).

Reads that concern the running system (its session so far, its reports) go
through ``SystemManager``'s public attributes; controls call its pause, resume,
set_speed and stop. Controls are POST only: a GET on them is 405.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import AfterValidator, BaseModel, BeforeValidator

from sessionflow.cli.report_cmd import report_rows
from sessionflow.export import parse_interval
from sessionflow.models import Bar, to_us
from sessionflow.session_data import SessionReport
from sessionflow.session_data.quality import cell_label, quality_percent
from sessionflow.session_data.report import SymbolReport
from sessionflow.strategy import StrategyError, StrategyLoadError
from sessionflow.system_manager import State, SystemManager
from sessionflow.system_manager.manager import InvalidTransition
from sessionflow.system_manager.settings import check_speed, not_a_bool
from sessionflow.web.auth import COOKIE, token_matches
from sessionflow.web.control import STOP_TIMEOUT_S, Conflict, SystemSlot, status_of
from sessionflow.web.store_view import Cell, StoreView, iso
from sessionflow.web.store_view import NotFound as StoreNotFound
from sessionflow.web.trading import StrategySpec

QUALITY_SESSIONS = 60  # the matrix without a range: the last sessions stored
MAX_QUALITY_SESSIONS = 260  # about a year; more is refused (each cell reads its bars)


class StartBody(BaseModel):
    symbols: list[str] | str | None = None  # None: the served settings' (else all stored)
    start: date
    end: date
    speed: Annotated[float, BeforeValidator(not_a_bool), AfterValidator(check_speed)] | None = None
    strategy: str | None = None  # FILE.py:Class on the server's machine (docs/web.md)
    params: dict[str, Any] | list[str] | None = None
    cash: float | None = None
    commission: str | None = None
    slippage: str | None = None


class SpeedBody(BaseModel):
    speed: Annotated[float, BeforeValidator(not_a_bool), AfterValidator(check_speed)]


class LoginBody(BaseModel):
    token: str


def strategy_of(body: StartBody) -> StrategySpec | None:
    if body.strategy is None:
        if body.params or body.cash is not None or body.commission or body.slippage:
            raise StrategyLoadError("params, cash, commission and slippage need a strategy")
        return None
    return StrategySpec.load(body.strategy, body.params, body.cash, body.commission, body.slippage)


def _bad(exc: Exception, status: int = 400) -> HTTPException:
    return HTTPException(status, " ".join(str(exc).split()))


def _so_far(system: SystemManager) -> SessionReport | None:
    """The report of the session under way (or cut by a stop) over the minutes elapsed,
    as the engine rates it; None when no session has started or the last one finished."""
    try:
        current = system.data_manager.session_data.report(so_far=True)
    except RuntimeError:  # no session has started
        return None
    done = system.data_manager.reports
    return None if done and done[-1].session == current.session else current


def _reports(system: SystemManager | None) -> list[SessionReport]:
    """Completed session reports, plus the one under way so far."""
    if system is None:
        return []
    reports = system.data_manager.reports
    cut = _so_far(system)
    return reports if cut is None else [*reports, cut]


def _engine_bars(bars: Sequence[Bar]) -> list[dict[str, Any]]:
    return [
        {"time": to_us(b.ts) // 1_000_000, "open": b.open, "high": b.high, "low": b.low,
         "close": b.close, "volume": b.volume, "minutes": b.minutes}
        for b in bars
    ]  # fmt: skip


def _engine_series(
    system: SystemManager | None, symbol: str, day: date, minutes: int
) -> list[dict[str, Any]] | None:
    """The bars so far of the session a running system is playing; None for anything else."""
    if system is None or system.state is State.STOPPED or system.status().session != day:
        return None
    dm = system.data_manager
    if symbol not in dm.session_data.symbols or minutes not in (
        1,
        *system.settings.derived_intervals,
    ):
        return None
    return _engine_bars(dm.bars(symbol, minutes))


def build_router(slot: SystemSlot, view: StoreView, token: str | None) -> APIRouter:
    api = APIRouter(prefix="/api")

    def day(text: str | None, what: str = "session") -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            raise HTTPException(400, f"{what} {text!r} is not a YYYY-MM-DD date") from None

    @api.get("/symbols")
    def symbols() -> dict[str, Any]:
        return {"symbols": view.symbols()}

    @api.get("/sessions")
    def sessions() -> dict[str, Any]:
        return {"sessions": [
            {"session": s.date.isoformat(), "open": s.open.isoformat(),
             "close": s.close.isoformat(), "minutes": s.minutes, "early_close": s.early_close}
            for s in view.sessions()
        ]}  # fmt: skip

    @api.get("/bars/{symbol}")
    def bars(symbol: str, interval: str = "1m", session: str | None = None) -> dict[str, Any]:
        try:
            minutes = parse_interval(interval)
            sym = view.symbol(symbol)
            info = view.session(day(session))
        except ValueError as exc:
            raise _bad(exc) from None
        except StoreNotFound as exc:
            raise _bad(exc, 404) from None
        out = {"symbol": sym, "session": info.date.isoformat(), "interval": f"{minutes}m"}
        so_far = _engine_series(slot.system, sym, info.date, minutes)
        if so_far is not None:
            return out | {"source": "engine", "bars": so_far}
        return out | {"source": "store", "bars": view.bars(sym, info, minutes)}

    def matrix(start: str | None, end: str | None) -> list[dict[str, Any]]:
        """Each session's cells read its bars: the last sessions by default, a span bounded."""
        a, b = day(start, "start"), day(end, "end")
        stored = view.sessions()
        wanted = [
            s for s in stored if (a is None or s.date >= a) and (b is None or s.date <= b)
        ]  # fmt: skip
        if a is None and b is None:
            wanted = wanted[-QUALITY_SESSIONS:]
        elif len(wanted) > MAX_QUALITY_SESSIONS:
            raise HTTPException(
                400,
                f"{a or stored[0].date} .. {b or stored[-1].date} spans {len(wanted)} sessions "
                f"of the store; ask for at most {MAX_QUALITY_SESSIONS} at a time",
            )
        system = slot.system
        engine = {(r.session, row.symbol): row for r in _reports(system) for row in r.rows}
        running = (  # the session under way; its engine rows are so far, up to the clock
            None if system is None or system.state is State.STOPPED else system.status().session
        )
        spans = view.stored_spans()
        return [
            _cell(c, engine.get((c.session, c.symbol)), spans.get(c.symbol))
            | {"running": c.session == running and (c.session, c.symbol) in engine}
            for c in view.cells(wanted)
        ]

    @api.get("/quality")
    def quality(start: str | None = None, end: str | None = None) -> dict[str, Any]:
        cells = matrix(start, end)
        return {
            "symbols": view.symbols(),
            "sessions": sorted({c["session"] for c in cells}),
            "cells": cells,
        }

    @api.get("/gaps")
    def gaps(
        session: str | None = None, symbol: str | None = None, start: str | None = None,
        end: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        try:
            if session is not None:  # a day that is no session is a 404, as for /api/bars
                start = end = view.session(day(session)).date.isoformat()
            sym = None if symbol is None else view.symbol(symbol)
        except ValueError as exc:
            raise _bad(exc) from None
        except StoreNotFound as exc:
            raise _bad(exc, 404) from None
        out: list[dict[str, Any]] = []
        for c in matrix(start, end):
            if sym is None or c["symbol"] == sym:
                out.extend(
                    {"symbol": c["symbol"], "session": c["session"]} | g for g in c["gap_ranges"]
                )
        return {"gaps": out}

    @api.get("/report")
    def report() -> dict[str, Any]:
        system = slot.system
        if system is None:
            return {"rows": []}
        reports = _reports(system)
        cut = {reports[-1].session} if len(reports) > len(system.data_manager.reports) else set()
        rows = report_rows(reports, dict(slot.hub.filled), system.calendar.tz)
        return {"rows": [r.to_dict() | {"partial": r.session in cut} for r in rows]}

    @api.get("/system")
    def system_status() -> dict[str, Any]:
        return status_of(slot)

    def control(action: str) -> dict[str, Any]:
        try:
            system = slot.current()
            if action == "pause":
                system.pause()
            elif action == "resume":
                system.resume()
            elif action == "stop":
                report = system.stop(STOP_TIMEOUT_S)
                out = status_of(slot) | {"stopped": report.message()}
                slot.hub.broadcast({"type": "status", "status": out})
                return out
        except (Conflict, InvalidTransition) as exc:
            raise _bad(exc, 409) from None
        out = status_of(slot)
        slot.hub.broadcast({"type": "status", "status": out})
        return out

    @api.post("/system/pause")
    def pause() -> dict[str, Any]:
        return control("pause")

    @api.post("/system/resume")
    def resume() -> dict[str, Any]:
        return control("resume")

    @api.post("/system/stop")
    def stop() -> dict[str, Any]:
        return control("stop")

    @api.post("/system/speed")
    def speed(body: SpeedBody) -> dict[str, Any]:
        try:
            slot.current().set_speed(body.speed)
        except (Conflict, InvalidTransition) as exc:
            raise _bad(exc, 409) from None
        except ValueError as exc:
            raise _bad(exc) from None
        return control("status")

    @api.post("/system/start")
    def start(body: StartBody) -> dict[str, Any]:
        try:
            strategy = strategy_of(body)
            slot.start(body.symbols, body.start, body.end, body.speed, strategy)
        except StrategyLoadError as exc:
            raise _bad(exc, 422) from None
        except StrategyError as exc:  # on_start raised: nothing started
            raise _bad(exc) from None
        except Conflict as exc:
            raise _bad(exc, 409) from None
        except (ValueError, FileNotFoundError) as exc:
            raise _bad(exc) from None
        return control("status")

    @api.post("/login")
    def login(body: LoginBody, response: Response) -> dict[str, Any]:
        if token is None:
            return {"ok": True, "token_required": False}
        if not token_matches(body.token, token):
            raise HTTPException(401, "wrong token")
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict", path="/")
        return {"ok": True, "token_required": True}

    return api


def _iso(text: str) -> str:
    """One spelling of a UTC time for every source (the engine writes ``Z``, the store
    ``+00:00``), so a gap reads the same from both."""
    return datetime.fromisoformat(text).isoformat()


def _cell(c: Cell, engine: SymbolReport | None, span: tuple[date, date] | None) -> dict[str, Any]:
    """One heat-map cell: the store's figures, or the engine's for a session it played or
    is playing (then over the minutes so far). A session outside the symbol's first to last
    stored one is not charged, as ``store info`` does not: no quality, no gaps.

    ``missing`` and ``filled`` count minutes; ``gap_ranges`` are the missing ones, [start, end).
    """
    bars, expected, filled, source = c.bars, c.expected, 0, "store"
    ranges = [(iso(a), iso(b)) for a, b in c.gaps]
    missing = expected - bars
    charged = span is not None and span[0] <= c.session <= span[1]
    if engine is not None:
        bars, expected, filled, source = engine.bars, engine.expected, engine.gaps_filled, "engine"
        ranges = [(_iso(a), _iso(b)) for a, b in engine.gap_ranges]  # "Z" -> "+00:00"
        missing = engine.gaps_found - engine.gaps_filled
    elif not charged:
        ranges, missing = [], 0
    quality = quality_percent(bars, expected) if charged or engine is not None else None
    return {
        "symbol": c.symbol, "session": c.session.isoformat(), "bars": bars,
        "expected": expected, "quality": quality, "missing": missing, "filled": filled,
        "source": source, "charged": charged,
        "label": "-" if quality is None else cell_label(bars, expected),
        "gap_ranges": [{"start": a, "end": b} for a, b in ranges],
    }  # fmt: skip
