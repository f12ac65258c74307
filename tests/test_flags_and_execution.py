"""Update flags say what changed (orders and fills: tests/test_execution.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sessionflow import BarEvent, DerivedBarEvent, Event, SystemManager
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
