"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

Missing Chromium or Playwright fails under CI=true (``.ci/run`` installs both) and
skips elsewhere. Playwright's own browser download is never used. With
``SESSIONFLOW_SCREENSHOTS=DIR`` the test also saves the screenshots the README shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sessionflow import State, SystemManager
from sessionflow.demo import DEMO_SYMBOLS
from tests.web_support import demo_app, late_store, serving

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    problem = None
    if not Path(path).exists():
        problem = "chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true, so this is an error, not a skip)")
        pytest.skip(problem)
    return path


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@contextmanager
def _playing(page: Any, store: Path, over: dict[str, Any]) -> Iterator[SystemManager]:
    """The page open on a dashboard whose backtest (``over`` the demo settings) runs."""
    with demo_app(store, system_over=over) as (app, system):
        assert system is not None
        system.start()
        with serving(app) as base:
            page.goto(base + "/")
            page.wait_for_selector("body[data-ready=true]")
            yield system


def _status_reads(page: Any) -> int:
    return int(page.evaluate("Number(document.body.dataset.statusCount || 0)"))


def _clock_after_next_status(page: Any) -> str:
    """The clock the page shows once another status message has arrived over the WebSocket."""
    n = _status_reads(page)
    page.wait_for_function(f"Number(document.body.dataset.statusCount) > {n}")
    return str(page.get_attribute("#clock", "data-iso"))


_CANDLE_PIXELS = """() => {
  let n = 0;
  for (const c of document.querySelectorAll('#chart canvas')) {
    if (!c.width || !c.height) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      const up = d[i] === 0x26 && d[i + 1] === 0xa6 && d[i + 2] === 0x9a;
      const down = d[i] === 0xef && d[i + 1] === 0x53 && d[i + 2] === 0x50;
      if (up || down) n++;
    }
  }
  return n;
}"""


def test_dashboard_charts_heat_map_and_controls(page: Any, demo_store_path: Path) -> None:
    over = {"start": date(2024, 11, 25), "end": date(2024, 11, 27), "speed": 600.0}
    with _playing(page, demo_store_path, over) as system:
        assert page.text_content("#mode") == "backtest"
        assert page.text_content("#state") == "running"

        cells = page.locator("#heatmap td.cell")
        assert cells.count() == len(DEMO_SYMBOLS) * 11  # 11 sessions 2024-11-20..12-05
        page.click("#heatmap td.cell[data-symbol=SPY][data-session='2024-11-29']")
        page.wait_for_function(
            "document.getElementById('chart-info').textContent.startsWith("
            "'SPY 2024-11-29 1m: 210 bars')"
        )
        page.wait_for_function(f"({_CANDLE_PIXELS})() > 500")
        page.click("#intervals button[data-interval='5m']")
        page.wait_for_function(
            "document.getElementById('chart-info').textContent.startsWith("
            "'SPY 2024-11-29 5m: 42 bars')"
        )
        page.click("#heatmap td.cell[data-symbol=NVDA][data-session='2024-11-29']")
        page.wait_for_function(
            "/^NVDA 2024-11-29 5m: \\d+ bars, [1-9]\\d* gap/.test("
            "document.getElementById('chart-info').textContent)"
        )
        assert page.locator("#heatmap td.cell.selected").count() == 1
        assert page.locator("#heatmap td.cell.running").count() == len(DEMO_SYMBOLS)

        moving = _clock_after_next_status(page)
        assert _clock_after_next_status(page) > moving  # running: time moves

        page.click("#pause")
        page.wait_for_selector("#state[data-state=paused]")
        frozen = _clock_after_next_status(page)
        assert _clock_after_next_status(page) == frozen
        assert system.state is State.PAUSED
        page.wait_for_function("document.querySelectorAll('#report tr').length > 5")
        _screenshot(page, "dashboard.png")

        page.click("#resume")
        page.wait_for_selector("#state[data-state=running]")
        page.fill("#speed-input", "120")
        page.click("#set-speed")
        page.wait_for_function("document.getElementById('speed').textContent === '120x'")
        assert system.speed == 120.0

        page.click("#stop")
        page.wait_for_selector("#state[data-state=stopped]")
        assert system.status().state == State.STOPPED.value
        assert page.text_content("#message") == ""


def _screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("SESSIONFLOW_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_with_a_token_the_page_asks_for_it_once(page: Any, demo_store_path: Path) -> None:
    token = "browser-token-7f3e2d1c0b9a"
    with demo_app(demo_store_path, token=token) as (app, _), serving(app) as base:
        page.goto(base + "/")
        page.wait_for_selector("#login[open]")
        assert token not in page.content()
        page.fill("#token", token)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("body[data-ready=true]")
        assert page.text_content("#state") == "none"
        assert page.locator("#heatmap td.cell").count() == len(DEMO_SYMBOLS) * 11
        cookies = page.context.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
            ("sessionflow_token", True, "Strict")
        ]


_CAPTION_BARS = (
    "Number((document.getElementById('chart-info').textContent.match(/: (\\d+) bars/) || [])[1]"
    " ?? -1)"
)
_SO_FAR = """(sym) => {
  for (const tr of document.querySelectorAll('#report tr')) {
    const td = [...tr.cells].map((c) => c.textContent);
    if (td[0] === '2024-11-29 (so far)' && td[1] === sym) return td;
  }
  return null;
}"""


def test_the_page_follows_a_run_while_it_plays(page: Any, demo_store_path: Path) -> None:
    """Report and caption refresh while playing (not only on a state change); the followed
    chart keeps the whole session's width; the playing outline only on the run's symbols;
    quality so far over the minutes elapsed; gaps up to the clock; cells rounded, not cut."""
    day = date(2024, 11, 29)
    over = {"symbols": ["SPY", "NVDA"], "start": day, "end": day, "speed": 200.0}
    with _playing(page, demo_store_path, over) as system:
        page.wait_for_function(
            "document.getElementById('chart-info').textContent.startsWith('SPY 2024-11-29 1m')"
        )
        n = page.evaluate(_CAPTION_BARS)
        page.wait_for_function(f"{_CAPTION_BARS} > {n}")  # the caption moves on its own
        lo, hi = (float(x) for x in page.get_attribute("#chart", "data-range").split(","))
        assert hi - lo >= 209, (lo, hi)  # all 210 minutes, not the last few candles
        so_far = page.evaluate(f"({_SO_FAR})('SPY')")
        assert so_far is not None and so_far[4] == "100.0000", so_far  # not 12.3810
        page.wait_for_function(f"(({_SO_FAR})('SPY') || [])[2] > {int(so_far[2])}")
        assert page.locator("#heatmap td.cell.running").count() == 2  # SPY and NVDA
        running = page.locator("#heatmap td.cell.running[data-symbol=SPY]")
        assert running.text_content() == "100"
        qqq = page.locator("#heatmap td.cell[data-symbol=QQQ][data-session='2024-11-20']")
        assert qqq.text_content() == "99.5"  # 99.4872: truncation would show 99.4

        page.wait_for_function(  # past NVDA's first gap (09:41 ET)
            "document.getElementById('clock').dataset.iso >= '2024-11-29T15:00'"
        )
        page.click("#pause")
        page.wait_for_selector("#state[data-state=paused]")
        page.select_option("#symbol", "NVDA")
        page.wait_for_function(
            "document.getElementById('chart-info').textContent.startsWith('NVDA 2024-11-29')"
        )
        clock = page.get_attribute("#clock", "data-iso")
        caption = str(page.text_content("#chart-info"))
        gaps = int(caption.split(" bars, ")[1].split(" gap")[0])
        assert 1 <= gaps < 8, caption  # the day has 8; those after the clock are not yet
        assert system.state is State.PAUSED and clock is not None
        system.stop()


def test_sessions_before_a_symbols_first_are_not_charged(page: Any, tmp_path: Path) -> None:
    path = late_store(tmp_path / "late.duckdb")
    with demo_app(path) as (app, _), serving(app) as base:
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        early = page.locator("#heatmap td.cell[data-symbol=BBB][data-session='2024-11-21']")
        assert early.text_content() == "-"  # was a red 0.0
        late = page.locator("#heatmap td.cell[data-symbol=BBB][data-session='2024-11-25']")
        assert late.text_content() == "100"
