"""The per-minute upkeep check's shortcuts give what the plain computation gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sessionflow.data_upkeep.worker import quality_table
from sessionflow.events import DerivedBarEvent, Event, SessionStartEvent
from sessionflow.system_manager import SystemManager
from tests.helpers import demo_settings, run_collect


def plain_quality(received: np.ndarray, expected: int) -> np.ndarray:
    """What the check computed before the table: three array operations per check."""
    if not expected:
        return np.zeros(len(received))
    q = 100.0 * received
    q /= expected
    q.round(4, out=q)
    return q


def test_quality_table_is_bit_identical_to_the_plain_formula() -> None:
    for minutes in (390, 210, 7):
        table = quality_table(minutes)
        for expected in range(minutes + 1):
            received = np.arange(expected + 1)
            want = plain_quality(received, expected)
            assert table[expected].take(received).tobytes() == want.tobytes(), expected


def test_quality_and_its_flags_after_every_check_of_a_gappy_backtest(
    demo_store_path: Path,
) -> None:
    """A consumer reads quality at the derived bars a check announces, which come before
    any later bar is written: it is the plain formula over the counts,
    and the quality flag is up for every symbol whenever another minute became expected."""
    seen: list[int] = []

    def look(system: SystemManager, ev: Event) -> None:
        sd = system.data_manager.session_data
        with sd.lock:
            if isinstance(ev, SessionStartEvent):
                seen.append(sd.expected_so_far)
            if not isinstance(ev, DerivedBarEvent):
                return
            assert sd.quality.tobytes() == plain_quality(sd.received, sd.expected_so_far).tobytes()
            if sd.expected_so_far != seen[-1]:
                seen.append(sd.expected_so_far)
                assert all("quality" in sd.take_updates(s) for s in sd.names)

    settings = demo_settings(demo_store_path, check_interval_seconds=30)
    system, events = run_collect(settings, on_event=look)
    assert len(seen) > 100 and len(events) > 1_000
    assert any(r.quality < 100 for rep in system.data_manager.reports for r in rep.rows)
