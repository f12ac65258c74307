"""Live mode's coordinator (thread 1): drains the feed into session_data as the clock allows.

``coordinator`` runs the loop, ``delivery`` decides when a minute is complete and hands
it on, ``quotes`` folds quote updates into one-minute quote bars, ``store`` batches the
store writes off the hot path, ``health`` counts what the feed did.
"""

from sessionflow.stream_coordinator.live.coordinator import LiveCoordinator, LiveTiming
from sessionflow.stream_coordinator.live.quotes import QuoteBarBuilder
from sessionflow.stream_coordinator.live.store import StoreBatcher

__all__ = ["LiveCoordinator", "LiveTiming", "QuoteBarBuilder", "StoreBatcher"]
