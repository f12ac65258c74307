"""The check due at an instant's time runs in that instant's step, but only after the
instant's events were delivered, and never while a consumer has paused the run."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

from sessionflow import State, build_system
from sessionflow.events import BarSliceEvent, BatchEvent, DerivedSliceEvent
from tests.helpers import demo_settings

ONE_DAY = {"start": date(2024, 11, 29), "end": date(2024, 11, 29)}
T_1435 = datetime(2024, 11, 29, 14, 35, tzinfo=UTC)  # the first 5m window ends


def test_consumers_see_the_instant_before_the_check_of_the_same_time(
    demo_store_path: Path,
) -> None:
    system = build_system(demo_settings(demo_store_path, derived_intervals=[5], **ONE_DAY))
    sd = system.data_manager.session_data
    seen: list[tuple[str, bool]] = []

    def on_batch(ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent | DerivedSliceEvent) and ev.time == T_1435:
            with sd.lock:
                seen.append((type(ev).__name__, bool(sd.derived[5].present[0].any())))

    system.on_batch(on_batch)
    system.run()
    assert system.error is None
    # the 14:34 bars arrive at 14:35 without the window they close; the check then adds it
    assert seen == [("BarSliceEvent", False), ("DerivedSliceEvent", True)]


def test_a_pause_in_the_instants_callback_holds_the_check_until_resume(
    demo_store_path: Path,
) -> None:
    system = build_system(demo_settings(demo_store_path, derived_intervals=[5], **ONE_DAY))
    sd = system.data_manager.session_data
    paused = threading.Event()
    derived_while_paused = threading.Event()
    derived: list[datetime] = []

    def on_batch(ev: BatchEvent) -> None:
        if isinstance(ev, DerivedSliceEvent):
            derived.append(ev.time)
            if system.state is State.PAUSED:
                derived_while_paused.set()
        elif isinstance(ev, BarSliceEvent) and ev.time == T_1435 and not paused.is_set():
            system.pause()
            paused.set()

    system.on_batch(on_batch)
    system.start()
    try:
        assert paused.wait(10)
        assert not derived_while_paused.wait(0.3)  # a check would have announced the window
        with sd.lock:
            assert not sd.derived[5].present[0].any()
            assert sd.expected_so_far == 4  # the 14:34 check ran, the 14:35 one did not
        assert system.state is State.PAUSED
        system.resume()
        assert system.wait(30)
    finally:
        system.stop()
    assert system.error is None
    assert derived[0] == T_1435 and len(derived) == 42  # 210 minutes in 5m windows
