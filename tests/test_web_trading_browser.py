"""A strategy run on the dashboard in a real browser (Debian's Chromium through Playwright,
as tests/test_web_browser.py): started from the page's form, its equity curve, a fill
marker on the candles and a position row appear while it plays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_web_browser import page  # noqa: F401  (the Chromium page fixture)
from tests.web_support import demo_app, serving

STRATEGY = f"{Path(__file__).with_name('dash_strategy.py')}:BuyHoldAndBid"


def _pixels(selector: str, rgb: tuple[int, int, int]) -> str:
    """A page function counting the pixels of one colour on the canvases under ``selector``."""
    r, g, b = rgb
    return f"""() => {{
  let n = 0;
  for (const c of document.querySelectorAll('{selector} canvas')) {{
    if (!c.width || !c.height) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {{
      if (d[i] === {r} && d[i + 1] === {g} && d[i + 2] === {b}) n++;
    }}
  }}
  return n;
}}"""


def _number(page: Any, expression: str) -> int:  # noqa: F811  (not the fixture)
    return int(page.evaluate(f"Number({expression} || 0)"))


def test_a_strategy_run_shows_equity_fills_and_positions_while_it_plays(
    page: Any,  # noqa: F811
    demo_store_path: Path,
) -> None:
    with demo_app(demo_store_path) as (app, _), serving(app) as base:
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator("#trading-panel").is_hidden()  # no strategy yet
        page.fill("#start-symbols", "AAPL,MSFT")
        page.fill("#start-start", "2024-11-20")
        page.fill("#start-end", "2024-11-21")
        page.fill("#start-speed", "300")
        page.fill("#start-strategy", STRATEGY)
        page.fill("#start-params", "quantity=10, hold=3")
        page.click("#start")
        page.wait_for_selector("#trading-panel", state="visible")

        points = "document.getElementById('equity-chart').dataset.points"
        page.wait_for_function(f"Number({points}) > 3")
        page.wait_for_function(f"({_pixels('#equity-chart', (0x3B, 0x82, 0xF6))})() > 50")
        page.wait_for_function("Number(document.getElementById('chart').dataset.fillMarkers) > 0")
        page.wait_for_function(f"({_pixels('#chart', (0x22, 0xC5, 0x5E))})() > 20")  # buy arrow
        page.wait_for_function("document.querySelector('#positions td')?.textContent === 'AAPL'")
        page.wait_for_function("Number(document.getElementById('orders').dataset.rows) === 2")
        assert page.get_attribute("#state", "data-state") == "running"
        assert app.state.slot.run.live.summary is None  # still playing
        # and it keeps moving: more equity points arrive over the WebSocket
        seen = _number(page, points)
        page.wait_for_function(f"Number({points}) > {seen}")
        row = [td.text_content() for td in page.locator("#positions tr:nth-child(2) td").all()]
        assert row[:2] == ["AAPL", "5"]  # bought 10, sold half after 3 bars
        assert "BuyHoldAndBid (quantity=10, hold=3, bid_fraction=0.5, close_out=)" in str(
            page.text_content("#trading-info")
        )

        page.click("#stop")
        page.wait_for_selector("#state[data-state=stopped]")
        page.wait_for_function(
            "document.getElementById('trading-info').textContent.includes('finished (incomplete')"
        )
        page.wait_for_function("Number(document.getElementById('orders').dataset.rows) === 0")
        assert page.text_content("#message") == ""
