"""The dashboard round: the web server, in this process, against a backtest's own values.

The app ``serve`` builds (``create_app`` over the check store opened read-only) runs
on uvicorn on a free loopback port, with the served settings deriving 5, 7 and 60
minute bars (60m starts 09:30 ET, so clock-aligned windows would show; 7m does not
divide a session). A backtest is started through ``POST /api/system/start``, as the
page does. Once it ended, every ``/api/bars`` series (each symbol, session and
interval) is compared with the bars a separate backtest of the same settings
delivered (:class:`RunDigest`), window lengths with the calendar's close, and
``/api/report`` and the ``/api/quality`` cells with that backtest's session reports.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from sessionflow.check.rounds import (
    EngineRun,
    Findings,
    RoundResult,
    compare_rows,
    engine_run,
    judged,
)
from sessionflow.models import from_us
from sessionflow.store import open_store
from sessionflow.system_manager import Settings
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.web import create_app
from sessionflow.web.server import uvicorn_config

INTERVALS = (1, 5, 7, 60)
DERIVED = [k for k in INTERVALS if k > 1]
TIMEOUT_S = 60.0
REPORT_FIELDS = ("bars", "expected", "quality", "gaps_found", "gaps_filled", "volume", "high",
                 "low")  # fmt: skip


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """uvicorn on 127.0.0.1:<free port> in a thread; the base URL once it listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, None))
    thread = threading.Thread(target=server.run, name="check-uvicorn", daemon=True)
    thread.start()
    try:
        for _ in range(int(TIMEOUT_S * 100)):  # uvicorn sets `started` once it listens
            if server.started or not thread.is_alive():
                break
            thread.join(0.01)
        if not server.started:
            raise RuntimeError("the web server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _call(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path, data=data, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        return json.loads(resp.read())


def run_dashboard_round(
    store_path: Path, symbols: Sequence[str], start: date, end: date, calendar: ExchangeCalendar
) -> RoundResult:
    def body(found: Findings) -> None:
        reference = engine_run(store_path, symbols, start, end, derived_intervals=DERIVED)
        settings = Settings.load(store_path=store_path, symbols=list(symbols),
                                 derived_intervals=DERIVED)  # fmt: skip
        store = open_store(store_path, read_only=True)
        try:
            app = create_app(None, store, settings=settings)
            with serving(app) as base:
                wanted = {"symbols": list(symbols), "start": str(start), "end": str(end)}
                _call(base, "/api/system/start", wanted | {"speed": 0})
                system = app.state.slot.system
                if system is None or not system.wait(TIMEOUT_S):
                    raise RuntimeError(f"the dashboard's backtest did not end in {TIMEOUT_S:g} s")
                _bars(found, base, reference, symbols, start, end, calendar)
                _reports(found, base, reference, start, end)
        finally:
            store.close()

    return judged("dashboard", body)


def _bars(
    found: Findings,
    base: str,
    reference: EngineRun,
    symbols: Sequence[str],
    start: date,
    end: date,
    calendar: ExchangeCalendar,
) -> None:
    got: dict[tuple[str, ...], tuple[Any, ...]] = {}
    want: dict[tuple[str, ...], tuple[Any, ...]] = {}
    for s in calendar.sessions(start, end):
        close = int(s.close.timestamp())
        for sym in symbols:
            for k in INTERVALS:
                answer = _call(base, f"/api/bars/{sym}?interval={k}m&session={s.date}")
                for b in answer["bars"]:
                    got[(f"{k}m", sym, _hm(b["time"]))] = (
                        b["open"], b["high"], b["low"], b["close"], b["volume"], b["minutes"]
                    )  # fmt: skip
                for ts_us, ohlcv in reference.digest.series.get((s.date, sym, k), {}).items():
                    t = ts_us // 1_000_000
                    want[(f"{k}m", sym, _hm(t))] = (*ohlcv, min(k, (close - t) // 60))
    found.differ(compare_rows("/api/bars vs the engine's bars", got, want))
    found.saw(f"/api/bars at {', '.join(f'{k}m' for k in INTERVALS)}: {len(want)} bars")


def _hm(epoch_s: int) -> str:
    return f"{from_us(epoch_s * 1_000_000):%Y-%m-%d %H:%MZ}"


def _reports(found: Findings, base: str, reference: EngineRun, start: date, end: date) -> None:
    want = {(str(rep.session), r.symbol): tuple(getattr(r, f) for f in REPORT_FIELDS)
            for rep in reference.reports for r in rep.rows}  # fmt: skip
    rows = _call(base, "/api/report")["rows"]
    got = {(str(r["session"]), r["symbol"]): tuple(r[f] for f in REPORT_FIELDS) for r in rows}
    found.differ(compare_rows("/api/report vs the engine's report", got, want))
    cells = _call(base, f"/api/quality?start={start}&end={end}")["cells"]
    got_cells = {(c["session"], c["symbol"]): (c["bars"], c["quality"], c["source"])
                 for c in cells}  # fmt: skip
    want_cells = {k: (v[0], v[2], "engine") for k, v in want.items()}
    found.differ(compare_rows("/api/quality cells vs the engine's report", got_cells, want_cells))
    found.saw(f"/api/report and /api/quality: {len(want)} rows (bars, quality, volume, high, low)")
