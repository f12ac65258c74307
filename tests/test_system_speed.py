"""SystemManager.set_speed and status(): the control surface the CLI and the web dashboard share."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sessionflow import State, build_system
from sessionflow.system_manager import SystemStatus
from tests.helpers import ManualWall, demo_settings

ONE_DAY = {"start": date(2024, 11, 29), "end": date(2024, 11, 29)}


def test_set_speed_replans_the_wait_from_the_simulated_time_reached(
    demo_store_path: Path,
) -> None:
    wall = ManualWall()
    system = build_system(demo_settings(demo_store_path, speed=1.0, **ONE_DAY), wall=wall)
    system.start()
    try:
        assert wall.request(1, 10) == 60  # 09:31 step at real time
        wall.advance(30)  # half of it done: 09:30:30 reached
        system.set_speed(60.0)
        # the other 30 simulated seconds at 60x: half a wall second, not 59.5 s
        assert wall.request(2, 10) == pytest.approx(0.5)
        assert system.speed == 60.0
        wall.advance(0.5)
        assert wall.request(3, 10) == pytest.approx(1.0)  # 09:32 at 60x
    finally:
        wall.auto = True
        system.stop()
    assert system.error is None


def test_set_speed_to_zero_stops_waiting_and_back(demo_store_path: Path) -> None:
    wall = ManualWall()
    system = build_system(demo_settings(demo_store_path, speed=1.0, **ONE_DAY), wall=wall)
    system.start()
    try:
        assert wall.request(1, 10) == 60
        system.set_speed(0)
        assert system.wait(30)  # the whole session replays without any further wait
        assert len(wall.requests) == 1
    finally:
        wall.auto = True
        system.stop()
    assert system.error is None
    assert system.data_manager.reports[0].session == date(2024, 11, 29)


def test_set_speed_refuses_a_negative_speed(demo_store_path: Path) -> None:
    system = build_system(demo_settings(demo_store_path, **ONE_DAY))
    with pytest.raises(
        ValueError, match=r"speed -1: use 0 \(as fast as possible\) or 0.001 to 1000000"
    ):
        system.set_speed(-1)


def test_status_reports_mode_state_clock_speed_and_session(demo_store_path: Path) -> None:
    wall = ManualWall()
    system = build_system(demo_settings(demo_store_path, speed=1.0, **ONE_DAY), wall=wall)
    before = system.status()
    assert before == SystemStatus("backtest", "stopped", before.clock, 1.0, None)
    system.start()
    try:
        wall.request(1, 10)
        system.pause()
        st = system.status()
        assert (st.mode, st.state, st.speed, st.session) == (
            "backtest",
            "paused",
            1.0,
            date(2024, 11, 29),
        )
        assert st.clock == system.data_manager.clock.now()
        d = st.to_dict()
        assert d["clock"] == st.clock.isoformat()
        assert d["session"] == "2024-11-29"
        assert system.state is State.PAUSED
    finally:
        wall.auto = True
        system.stop()
    assert system.status().state == "stopped"
