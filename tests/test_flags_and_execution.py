"""Update flags say what changed; the paper ExecutionManager fills at what the strategy saw."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from sessionflow import BarEvent, DerivedBarEvent, Event, SessionStartEvent, SystemManager
from tests.helpers import demo_settings, run_collect

DAY = {"start": date(2024, 11, 29), "end": date(2024, 11, 29)}


def test_flags_report_each_data_type_once_until_taken(demo_store_path: Path) -> None:
    seen: list[tuple[str, frozenset[str]]] = []

    def on(system: SystemManager, ev: Event) -> None:
        sd = system.data_manager.session_data
        if isinstance(ev, BarEvent) and ev.bar.symbol == "AAPL" and len(seen) < 3:
            seen.append(("bar", sd.take_updates("AAPL")))
            seen.append(("again", sd.take_updates("AAPL")))
        first_5m = isinstance(ev, DerivedBarEvent) and ev.bar.symbol == "AAPL"
        if first_5m and ev.bar.minutes == 5 and not any(t == "derived" for t, _ in seen):
            seen.append(("derived", sd.take_updates("AAPL")))

    run_collect(demo_settings(demo_store_path, **DAY), on_event=on)
    assert seen[0] == ("bar", frozenset({"bars"}))
    assert seen[1] == ("again", frozenset())
    flags = next(f for tag, f in seen if tag == "derived")
    assert {"derived", "quality"} <= flags


def test_market_order_fills_at_the_last_close_seen(demo_store_path: Path) -> None:
    fills = []
    errors = []

    def on(system: SystemManager, ev: Event) -> None:
        em = system.execution_manager
        if isinstance(ev, SessionStartEvent):
            with pytest.raises(ValueError, match="no price yet"):
                em.market_order("SPY", 10)
            errors.append(ev)
        if isinstance(ev, BarEvent) and ev.bar.symbol == "SPY" and not fills:
            fills.append((em.market_order("SPY", 10), ev.bar))

    system, _ = run_collect(demo_settings(demo_store_path, **DAY), on_event=on)
    fill, bar = fills[0]
    assert errors
    assert fill.price == bar.close
    assert fill.time == bar.ts + timedelta(minutes=1)
    assert system.execution_manager.position("SPY") == 10
