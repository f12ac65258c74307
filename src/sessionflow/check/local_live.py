"""A live system on a manual clock against the local Alpaca-protocol server.

Shared by the check's live rounds (bad live input, the live round): one session of
``minutes`` from ``OPEN``, the server's credentials, and a clock the round moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionflow.data_manager.live import LiveParts
from sessionflow.models import MINUTE
from sessionflow.stream_coordinator.live import LiveCoordinator
from sessionflow.system_manager import Settings, SystemManager, build_system
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.time_provider import SessionInfo
from sessionflow.time_provider.live_clock import ManualClock
from sessionflow.time_provider.schedule import FixedSchedule

KEY, SECRET = "check-key", "check-secret"
OPEN = datetime(2024, 11, 29, 14, 30, tzinfo=UTC)
WAIT = 10.0


@dataclass
class LocalLive:
    settings: Settings
    session: SessionInfo
    clock: ManualClock
    system: SystemManager
    coordinator: LiveCoordinator


def local_live(
    tmp: Path,
    server: FakeAlpaca,
    symbols: tuple[str, ...],
    minutes: int,
    start: datetime,
    **live: Any,
) -> LocalLive:
    """Build (not start) a live system for one ``minutes``-long session from ``OPEN``."""
    session = SessionInfo(OPEN.date(), OPEN, OPEN + minutes * MINUTE)
    settings = Settings.load(
        mode="live",
        store_path=tmp / "live.duckdb",
        symbols=list(symbols),
        trailing_days=0,
        live={
            "feed_url": server.ws_url,
            "rest_url": server.rest_url,
            "key_id": KEY,
            "secret_key": SECRET,
            "connect_timeout_seconds": WAIT,
            "silence_timeout_seconds": 3600,
            "sessions": 1,
            **live,
        },
    )
    clock = ManualClock(start)
    server.follow(clock.now)  # "recent" REST data is recent in the session's time
    system = build_system(settings, live=LiveParts(clock=clock, schedule=FixedSchedule([session])))
    coordinator = system.data_manager.coordinator
    assert isinstance(coordinator, LiveCoordinator)
    return LocalLive(settings, session, clock, system, coordinator)
