"""The dashboard's REST and WebSocket API over a real demo store (docs/web.md)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from typer.testing import CliRunner

from sessionflow import DerivedBarEvent
from sessionflow.cli.app import app as cli_app
from sessionflow.demo import DEMO_SYMBOLS, GAPPY, synthetic_bars
from sessionflow.events import DerivedSliceEvent
from sessionflow.models import to_us
from sessionflow.store import open_store
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings, run_collect
from tests.web_support import demo_app, late_store, ws_messages

EARLY = "2024-11-29"


@pytest.fixture
def client(demo_store_path: Path) -> Any:
    with demo_app(demo_store_path) as (app, _), TestClient(app) as c:
        yield c


def test_symbols_and_sessions_come_from_the_store(client: TestClient) -> None:
    assert client.get("/api/symbols").json() == {"symbols": sorted(DEMO_SYMBOLS)}
    sessions = client.get("/api/sessions").json()["sessions"]
    days = [s["session"] for s in sessions]
    assert days[0] == "2024-11-20" and days[-1] == "2024-12-05"
    assert "2024-11-28" not in days  # Thanksgiving
    early = next(s for s in sessions if s["session"] == EARLY)
    assert early["minutes"] == 210 and early["early_close"] is True


def test_five_minute_bars_are_the_engines_42_on_the_early_close(
    client: TestClient, demo_store_path: Path
) -> None:
    got = client.get("/api/bars/spy", params={"interval": "5m", "session": EARLY}).json()
    assert (got["symbol"], got["session"], got["interval"]) == ("SPY", EARLY, "5m")
    bars = got["bars"]
    assert len(bars) == 42
    day = date.fromisoformat(EARLY)
    _, events = run_collect(demo_settings(demo_store_path, start=day, end=day, symbols=["SPY"]))
    engine = [ev.bar for ev in events if isinstance(ev, DerivedBarEvent) and ev.interval == 5]
    assert [(b["time"], b["open"], b["high"], b["low"], b["close"], b["volume"]) for b in bars] == [
        (to_us(b.ts) // 1_000_000, b.open, b.high, b.low, b.close, b.volume) for b in engine
    ]
    one = client.get("/api/bars/SPY", params={"interval": "1m", "session": EARLY}).json()
    assert len(one["bars"]) == 210


def test_bad_bar_requests_get_one_line_errors(client: TestClient) -> None:
    r = client.get("/api/bars/SPY", params={"interval": "7x"})
    assert r.status_code == 400 and "use minutes as Nm" in r.json()["detail"]
    r = client.get("/api/bars/ZZZZ", params={"session": EARLY})
    assert r.status_code == 404 and r.json()["detail"] == "symbol 'ZZZZ' is not in the store"
    r = client.get("/api/bars/SPY", params={"session": "2024-11-28"})
    assert r.status_code == 404 and "not a XNYS session" in r.json()["detail"]
    r = client.get("/api/gaps", params={"symbol": "BRK B"})
    assert r.status_code == 400 and r.json()["detail"] == "symbol 'BRK B' contains whitespace"
    r = client.get("/api/bars/SPY", params={"session": "29/11/2024"})
    assert r.status_code == 400 and "YYYY-MM-DD" in r.json()["detail"]


def test_quality_matrix_has_every_symbol_and_session_with_the_gaps(client: TestClient) -> None:
    q = client.get("/api/quality").json()
    assert len(q["sessions"]) == 11 and q["symbols"] == sorted(DEMO_SYMBOLS)
    cells = {(c["symbol"], c["session"]): c for c in q["cells"]}
    assert len(cells) == 5 * 11
    spy = cells[("SPY", EARLY)]
    assert (spy["bars"], spy["expected"], spy["quality"], spy["missing"]) == (210, 210, 100.0, 0)
    for sym in GAPPY:
        worst = min((c for c in q["cells"] if c["symbol"] == sym), key=lambda c: c["quality"])
        assert worst["missing"] > 0 and worst["gap_ranges"]
        assert worst["bars"] + worst["missing"] == worst["expected"]
    gaps = client.get("/api/gaps", params={"session": EARLY, "symbol": "NVDA"}).json()["gaps"]
    assert gaps and all(g["symbol"] == "NVDA" and g["session"] == EARLY for g in gaps)
    missing = cells[("NVDA", EARLY)]["missing"]
    span = sum((to_us(_dt(g["end"])) - to_us(_dt(g["start"]))) // 60_000_000 for g in gaps)
    assert span == missing


def _dt(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_controls_are_post_only(client: TestClient) -> None:
    for action in ("start", "pause", "resume", "speed", "stop"):
        assert client.get(f"/api/system/{action}").status_code == 405
    r = client.post("/api/system/pause")
    assert r.status_code == 409 and "no system has been started" in r.json()["detail"]
    assert client.get("/api/system").json()["state"] == "none"


def test_start_pause_resume_speed_stop_and_events_over_the_websocket(
    client: TestClient, demo_store_path: Path
) -> None:
    body = {"symbols": "spy,qqq", "start": EARLY, "end": EARLY, "speed": 600}
    with client.websocket_connect("/ws/events") as ws:
        first = ws.receive_json()
        assert first["type"] == "status" and first["status"]["state"] == "none"
        st = client.post("/api/system/start", json=body).json()
        assert st["state"] == "running" and st["symbols"] == ["SPY", "QQQ"]
        seen: dict[str, dict[str, Any]] = {}
        messages = ws_messages(ws)
        for _ in range(200):
            msg = next(messages)
            seen.setdefault(msg["type"], msg)
            if "bars" in seen and "session_start" in seen:
                break
        assert seen["session_start"]["session"] == EARLY
        bar = seen["bars"]["bars"][0]
        assert set(bar) == {"symbol", "time", "open", "high", "low", "close", "volume"}
        # bars stream without a pause at 600x, and the status still comes every 0.5 s
        kinds: set[str] = set()
        for _ in range(100):
            kinds.add(next(messages)["type"])
            if {"status", "bars", "derived"} <= kinds:
                break
        assert {"status", "bars", "derived"} <= kinds
    assert client.post("/api/system/start", json=body).status_code == 409
    paused = client.post("/api/system/pause").json()
    assert paused["state"] == "paused"
    # the session being played: the engine's bars so far, the same as the stored ones
    params = {"interval": "1m", "session": EARLY}
    so_far = client.get("/api/bars/SPY", params=params).json()
    assert so_far["source"] == "engine" and 0 < len(so_far["bars"]) < 210
    stored = client.get("/api/bars/MSFT", params=params).json()  # not in the system
    assert stored["source"] == "store" and len(stored["bars"]) == 210
    with demo_app(demo_store_path) as (other, _), TestClient(other) as c:
        full = c.get("/api/bars/SPY", params=params).json()["bars"]
    assert so_far["bars"] == full[: len(so_far["bars"])]
    assert client.get("/api/system").json()["clock"] == client.get("/api/system").json()["clock"]
    assert client.post("/api/system/pause").status_code == 409
    assert client.post("/api/system/resume").json()["state"] == "running"
    assert client.post("/api/system/speed", json={"speed": 0}).json()["speed"] == 0
    r = client.post("/api/system/speed", json={"speed": -2})
    assert r.status_code == 422
    stopped = client.post("/api/system/stop").json()
    assert stopped["state"] == "stopped" and stopped["stopped"].startswith("stopped in")
    rows = client.get("/api/report").json()["rows"]
    assert {r["symbol"] for r in rows} <= {"SPY", "QQQ"} and rows


def test_start_with_bad_input_is_a_400_naming_it(client: TestClient) -> None:
    r = client.post("/api/system/start", json={"symbols": "SPY,ZZZZ", "start": EARLY, "end": EARLY})
    assert r.status_code == 400 and r.json()["detail"] == "symbols not in the store: ZZZZ"
    r = client.post(
        "/api/system/start", json={"symbols": "SPY", "start": "2024-11-28", "end": "2024-11-28"}
    )
    assert r.status_code == 400 and "no XNYS sessions" in r.json()["detail"]


def test_a_token_guards_rest_and_websocket(demo_store_path: Path) -> None:
    token = "tok-3f9a8b7c6d5e"
    with demo_app(demo_store_path, token=token) as (app, _), TestClient(app) as c:
        assert c.get("/api/symbols").status_code == 401
        assert c.get("/api/symbols", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = c.get("/api/symbols", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert c.post("/api/system/stop").status_code == 401
        with pytest.raises(WebSocketDenialResponse) as denied, c.websocket_connect("/ws/events"):
            pass
        assert denied.value.status_code == 401
        page = c.get("/")
        assert page.status_code == 200 and token not in page.text
        assert c.post("/api/login", json={"token": "wrong"}).status_code == 401
        assert c.post("/api/login", json={"token": token}).status_code == 200
        assert c.get("/api/symbols").status_code == 200  # the HttpOnly cookie now
        with c.websocket_connect("/ws/events") as ws:
            assert ws.receive_json()["type"] == "status"


def test_cross_origin_writes_are_refused(client: TestClient) -> None:
    evil = {"Origin": "http://evil.example"}
    assert client.post("/api/system/stop", headers=evil).status_code == 403
    same = {"Origin": "http://testserver"}
    assert client.post("/api/system/stop", headers=same).status_code == 409


def test_finished_sessions_show_the_engines_figures(client: TestClient) -> None:
    body = {"symbols": "NVDA", "start": EARLY, "end": EARLY, "speed": 0}
    assert client.post("/api/system/start", json=body).status_code == 200
    app_slot = client.app.state.slot  # type: ignore[attr-defined]
    assert app_slot.system.wait(60)
    cells = {(c["symbol"], c["session"]): c for c in client.get("/api/quality").json()["cells"]}
    nvda, spy = cells[("NVDA", EARLY)], cells[("SPY", EARLY)]
    assert nvda["source"] == "engine" and spy["source"] == "store"
    report = app_slot.system.data_manager.reports[0].rows[0]
    assert (nvda["bars"], nvda["quality"], nvda["missing"]) == (
        report.bars,
        report.quality,
        210 - report.bars,
    )
    rows = client.get("/api/report").json()["rows"]
    assert [(r["session"], r["symbol"], r["partial"]) for r in rows] == [(EARLY, "NVDA", False)]


def test_the_dashboard_reads_a_postgresql_store_like_the_duckdb_one(
    client: TestClient, demo_store_path: Path, pg_url: str
) -> None:
    res = CliRunner().invoke(cli_app, ["store", "copy", str(demo_store_path), pg_url])
    assert res.exit_code == 0, res.stderr
    with demo_app(pg_url) as (app, _), TestClient(app) as pg_client:
        for url, params in [
            ("/api/symbols", {}),
            ("/api/sessions", {}),
            ("/api/bars/SPY", {"interval": "5m", "session": EARLY}),
            ("/api/quality", {}),
        ]:
            want = client.get(url, params=params).json()
            assert pg_client.get(url, params=params).json() == want, url
        assert (
            len(
                pg_client.get("/api/bars/SPY", params={"interval": "5m", "session": EARLY}).json()[
                    "bars"
                ]
            )
            == 42
        )


@pytest.mark.parametrize("day", ["9999-12-31", "2200-06-01", "1800-01-02"])
def test_a_session_outside_the_calendar_is_a_404_not_a_500(client: TestClient, day: str) -> None:
    r = client.get("/api/bars/SPY", params={"session": day})
    assert r.status_code == 404 and r.json()["detail"] == f"{day} is not a XNYS session"


def test_a_session_that_has_not_happened_yet_is_a_404(client: TestClient) -> None:
    """A calendar session after today (exchange time) has no bars yet: 404 with the reason."""
    cal = ExchangeCalendar("XNYS")
    today = datetime.now(UTC).astimezone(cal.tz).date()
    future = cal.sessions(today + timedelta(days=1), today + timedelta(days=20))[0].date
    r = client.get("/api/bars/SPY", params={"session": future.isoformat()})
    assert r.status_code == 404
    assert r.json()["detail"] == f"session {future} has not happened yet"


def test_starting_outside_the_calendar_is_a_400_naming_its_range(client: TestClient) -> None:
    body = {"symbols": "SPY", "start": "9999-12-30", "end": "9999-12-31"}
    r = client.post("/api/system/start", json=body)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("sessions 9999-12-30 .. 9999-12-31 reach outside the XNYS")


def test_speeds_the_pacer_cannot_follow_are_refused_and_the_system_runs_on(
    client: TestClient,
) -> None:
    """1e308 overflowed the pacer's clock arithmetic and killed the coordinator thread."""
    body = {"symbols": "SPY", "start": EARLY, "end": EARLY}
    assert client.post("/api/system/start", json=body | {"speed": 1e308}).status_code == 422
    assert client.post("/api/system/start", json=body | {"speed": 1}).status_code == 200
    # paused, a speed of 1e6 cannot play the session to its end before the state is read
    assert client.post("/api/system/pause").status_code == 200
    for speed in (1e308, 1e-300, 1e7):
        r = client.post("/api/system/speed", json={"speed": speed})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == (  # one line, as docs/web.md says of every error
            f"speed: speed {speed:g}: use 0 (as fast as possible) or 0.001 to 1000000"
        )
    r = client.post("/api/system/speed", json={})
    assert r.status_code == 422 and r.json()["detail"] == "speed: Field required"
    assert client.post("/api/system/speed", json={"speed": 1e6}).status_code == 200
    assert client.post("/api/system/speed", json={"speed": 1}).status_code == 200
    assert client.post("/api/system/resume").status_code == 200  # the coordinator lives on
    assert client.get("/api/system").json()["state"] == "running"
    assert client.post("/api/system/stop").status_code == 200


def test_the_speed_setting_has_the_same_bounds(demo_store_path: Path) -> None:
    res = CliRunner().invoke(
        cli_app, ["backtest", "--store", str(demo_store_path), "--symbols", "SPY",
                  "--start", EARLY, "--end", EARLY, "--speed", "1e308"],
    )  # fmt: skip
    assert res.exit_code == 2 and "speed" in res.stderr and "1000000" in res.stderr, res.output


@pytest.fixture(scope="module")
def long_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One symbol over 287 sessions: more than the matrix answers at once."""
    path = tmp_path_factory.mktemp("long") / "long.duckdb"
    store = open_store(path)
    try:
        store.upsert_bars(synthetic_bars(ExchangeCalendar(), ["AAA"], date(2023, 1, 3),
                                         date(2024, 2, 23)))  # fmt: skip
    finally:
        store.close()
    return path


def test_the_quality_matrix_is_bounded_on_a_long_store(long_store: Path) -> None:
    """Every session of years of data was read on each page load (14 s for 3 years x 2)."""
    with demo_app(long_store) as (app, _), TestClient(app) as client:
        q = client.get("/api/quality").json()
        assert len(q["sessions"]) == 60 and q["sessions"][-1] == "2024-02-23"
        assert len(client.get("/api/gaps").json()["gaps"]) == 0
        r = client.get("/api/quality", params={"start": "2023-01-01", "end": "2024-12-31"})
        assert r.status_code == 400
        assert r.json()["detail"] == (
            "2023-01-01 .. 2024-12-31 spans 287 sessions of the store; "
            "ask for at most 260 at a time"
        )
        year = client.get("/api/quality", params={"start": "2023-02-01", "end": "2024-01-31"})
        assert year.status_code == 200 and len(year.json()["sessions"]) == 251


def _same_length_wrong(token: str) -> list[str]:
    """Wrong tokens as long as the real one: a check that compares lengths passes them all."""
    flip = chr(ord(token[-1]) ^ 1)
    return [token[:-1] + flip, flip + token[1:], token[::-1], "x" * len(token)]


WEB_TOKEN = "tok-3f9a8b7c6d5e"


def _refused(c: TestClient, where: str, wrong: str) -> bool:
    """Whether ``wrong`` is refused (401) at ``where``."""
    bearer = {"Authorization": f"Bearer {wrong}"}
    if where == "rest":
        return c.get("/api/symbols", headers=bearer).status_code == 401
    if where == "controls":
        body = {"symbols": "SPY", "start": EARLY, "end": EARLY}
        codes = [c.post(f"/api/system/{a}", headers=bearer).status_code for a in ("pause", "stop")]
        codes.append(c.post("/api/system/start", headers=bearer, json=body).status_code)
        return codes == [401, 401, 401]
    if where == "login":
        return c.post("/api/login", json={"token": wrong}).status_code == 401
    headers = bearer if where == "websocket" else {}
    if where == "cookie":
        c.cookies.set("sessionflow_token", wrong)
    try:
        with c.websocket_connect("/ws/events", headers=headers):
            return False
    except WebSocketDenialResponse as denied:
        return denied.status_code == 401
    finally:
        c.cookies.clear()


@pytest.mark.parametrize("where", ["rest", "controls", "websocket", "cookie", "login"])
def test_same_length_wrong_tokens_are_refused(demo_store_path: Path, where: str) -> None:
    """Every wrong token the other tests try has another length than the real one: a check
    that compared lengths (or a prefix) passed them. Here all have the real one's length."""
    token = WEB_TOKEN
    flip = chr(ord(token[-1]) ^ 1)
    wrongs = [token[:-1] + flip, flip + token[1:], token[::-1], "x" * len(token)]
    with demo_app(demo_store_path, token=token) as (app, _), TestClient(app) as c:
        for wrong in wrongs:
            assert len(wrong) == len(token) and wrong != token
            assert _refused(c, where, wrong), wrong
        assert app.state.slot.system is None  # no control went through
        assert c.get("/api/symbols", headers={"Authorization": f"Bearer {token}"}).is_success


def test_starting_sessions_without_stored_bars_is_refused_as_the_cli_does(
    client: TestClient,
) -> None:
    """The CLI exits 2 when nothing is stored for the request; the page started a run of
    empty sessions (0 bars and 390 gaps each, read as bad data)."""
    body = {"symbols": "SPY,QQQ", "start": "2024-12-09", "end": "2024-12-10"}
    r = client.post("/api/system/start", json=body)
    assert r.status_code == 400
    assert r.json()["detail"] == (
        "no stored bars for SPY, QQQ in 2 sessions 2024-12-09..2024-12-10; "
        "import data for these sessions first"
    )
    assert client.get("/api/system").json()["state"] == "none"
    # some stored sessions in the span: the run goes ahead (the CLI warns and runs too)
    body = {"symbols": "SPY", "start": "2024-12-05", "end": "2024-12-09", "speed": 0}
    assert client.post("/api/system/start", json=body).status_code == 200


def test_gaps_of_a_day_that_is_no_session_is_a_404_as_for_bars(client: TestClient) -> None:
    for day, why in (("2024-11-28", "2024-11-28 is not a XNYS session"),
                     ("2200-06-02", "2200-06-02 is not a XNYS session")):  # fmt: skip
        bars = client.get("/api/bars/SPY", params={"session": day})
        gaps = client.get("/api/gaps", params={"session": day})
        assert (gaps.status_code, gaps.json()) == (bars.status_code, bars.json()) == (
            404, {"detail": why}
        )  # fmt: skip
    r = client.get("/api/gaps", params={"session": EARLY, "symbol": "ZZZZ"})
    assert (r.status_code, r.json()) == (404, {"detail": "symbol 'ZZZZ' is not in the store"})


def test_the_api_schema_needs_the_token_when_one_is_set(demo_store_path: Path) -> None:
    with demo_app(demo_store_path, token=WEB_TOKEN) as (app, _), TestClient(app) as c:
        assert c.get("/openapi.json").status_code == 401
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert c.get(path).status_code == 401
        ok = c.get("/openapi.json", headers={"Authorization": f"Bearer {WEB_TOKEN}"})
        assert ok.status_code == 200 and "/api/system/start" in ok.json()["paths"]
    with demo_app(demo_store_path) as (app, _), TestClient(app) as c:
        assert c.get("/openapi.json").status_code == 200  # no token set: as every route


@pytest.mark.parametrize("day", ["2024-11-27", EARLY])
def test_hourly_and_odd_intervals_are_the_engines_windows_from_the_session_open(
    client: TestClient, demo_store_path: Path, day: str
) -> None:
    """5m cannot tell open-aligned from clock-aligned windows on a 09:30 open (both start
    at :30 and :35); 60m (09:30-10:30, not 09:00-10:00) and 45m/7m can. The 13:00 early
    close ends with a short window (60m: 12:30-13:00, 30 minutes)."""
    session = date.fromisoformat(day)
    settings = demo_settings(demo_store_path, start=session, end=session, symbols=["NVDA"],
                             derived_intervals=[7, 45, 60])  # fmt: skip
    _, events = run_collect(settings)
    tz = ExchangeCalendar("XNYS").tz
    for k in (7, 45, 60):
        got = client.get("/api/bars/NVDA", params={"interval": f"{k}m", "session": day}).json()
        engine = [ev.bar for ev in events if isinstance(ev, DerivedBarEvent) and ev.interval == k]
        assert [(b["time"], b["open"], b["high"], b["low"], b["close"], b["volume"],
                 b["minutes"]) for b in got["bars"]] == [
            (to_us(b.ts) // 1_000_000, b.open, b.high, b.low, b.close, b.volume, b.minutes)
            for b in engine
        ], k  # fmt: skip
        first = datetime.fromtimestamp(got["bars"][0]["time"], tz)
        assert (first.hour, first.minute) == (9, 30), k
    hourly = client.get("/api/bars/NVDA", params={"interval": "60m", "session": day}).json()
    last = hourly["bars"][-1]
    closes = "12:30" if day == EARLY else "15:30"
    assert datetime.fromtimestamp(last["time"], tz).strftime("%H:%M") == closes
    assert last["minutes"] == 30


@contextmanager
def _paused_at(path: Path, symbols: list[str], at: datetime) -> Iterator[tuple[TestClient, Any]]:
    """The app with a run of the early close at full speed, paused at the first 5m window
    announced at or after ``at`` (a check announces it: its figures are settled)."""
    day = date.fromisoformat(EARLY)
    over = {"symbols": symbols, "start": day, "end": day, "speed": 0.0}
    paused = threading.Event()
    with demo_app(path, system_over=over) as (app, system), TestClient(app) as client:
        assert system is not None

        def hook(ev: Any) -> None:
            if isinstance(ev, DerivedSliceEvent) and ev.time >= at and not paused.is_set():
                system.pause()
                paused.set()

        system.on_batch(hook)
        system.start()
        assert paused.wait(60)
        yield client, system


def test_the_session_under_way_shows_the_engines_figures_so_far(
    client: TestClient, demo_store_path: Path
) -> None:
    """Gaps up to the clock, not the day's; quality over the minutes elapsed, as the engine
    rates it (a gapless symbol is 100%, not 43% of the whole session); the playing outline
    only on the run's symbols."""
    at = datetime(2024, 11, 29, 16, 0, tzinfo=UTC)  # 11:00 ET, 90 minutes in
    full = client.get("/api/gaps", params={"session": EARLY, "symbol": "NVDA"}).json()["gaps"]
    with _paused_at(demo_store_path, ["SPY", "NVDA"], at) as (client, system):
        _so_far_checks(client, system, full)


def _so_far_checks(client: TestClient, system: Any, full: list[dict[str, Any]]) -> None:
    clock = datetime.fromisoformat(client.get("/api/system").json()["clock"])
    gaps = client.get("/api/gaps", params={"session": EARLY, "symbol": "NVDA"}).json()["gaps"]
    assert gaps == [g for g in full if datetime.fromisoformat(g["start"]) < clock]
    assert 0 < len(gaps) < len(full)
    sd = system.data_manager.session_data
    rows = {r["symbol"]: r for r in client.get("/api/report").json()["rows"]}
    cells = {c["symbol"]: c for c in client.get("/api/quality").json()["cells"]
             if c["session"] == EARLY}  # fmt: skip
    for sym in ("SPY", "NVDA"):
        row, cell = rows[sym], cells[sym]
        assert row["partial"] and row["expected"] == sd.expected_so_far
        assert 90 <= row["expected"] < 210
        assert row["quality"] == sd.symbol(sym).bar_quality == cell["quality"]
        assert cell["running"] and cell["source"] == "engine"
        assert cell["expected"] == row["expected"] and cell["bars"] == row["bars"]
    assert rows["SPY"]["quality"] == 100.0 and cells["SPY"]["label"] == "100"
    assert rows["NVDA"]["quality"] < 100.0
    others = [c for s, c in cells.items() if s not in ("SPY", "NVDA")]
    assert others and not any(c["running"] for c in others)
    assert all(c["source"] == "store" and c["expected"] == 210 for c in others)


def test_sessions_outside_a_symbols_stored_span_are_not_charged(tmp_path: Path) -> None:
    """BBB is stored from 2024-11-25: the heat map showed red 0.0 for the sessions before,
    where ``store info`` charges nothing."""
    path = late_store(tmp_path / "late.duckdb")
    with demo_app(path) as (app, _), TestClient(app) as c:
        cells = {(x["symbol"], x["session"]): x for x in c.get("/api/quality").json()["cells"]}
        assert len(cells) == 2 * 6
        for day in ("2024-11-20", "2024-11-21", "2024-11-22"):
            bbb = cells[("BBB", day)]
            assert (bbb["charged"], bbb["quality"], bbb["label"], bbb["missing"]) == (
                False, None, "-", 0
            )  # fmt: skip
            assert cells[("AAA", day)]["charged"] and cells[("AAA", day)]["quality"] == 100.0
        assert cells[("BBB", "2024-11-25")]["charged"]
        gaps = c.get("/api/gaps", params={"symbol": "BBB", "session": "2024-11-20"}).json()
        assert gaps == {"gaps": []}
