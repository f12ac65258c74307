"""The stream coordinator (thread 1): the only place backtest time advances."""

from sessionflow.stream_coordinator.coordinator import CoordinatorHooks, StreamCoordinator
from sessionflow.stream_coordinator.merge import StreamMerger
from sessionflow.stream_coordinator.pacing import MonotonicWallClock, Pacer, WallClock
from sessionflow.stream_coordinator.publisher import EventPublisher

__all__ = [
    "CoordinatorHooks",
    "EventPublisher",
    "MonotonicWallClock",
    "Pacer",
    "StreamCoordinator",
    "StreamMerger",
    "WallClock",
]
