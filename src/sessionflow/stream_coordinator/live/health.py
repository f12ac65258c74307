"""Live-run counters: feed health, fills, store writes, data outside sessions.

Why flat ints: they land in ``SystemManager.counters`` next to the backtest's,
print in the CLI report and JSON as they are, and a per-session view is just
the difference of two snapshots (the backlog high-water mark excepted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sessionflow.stream_coordinator.live.coordinator import LiveCoordinator

_ABSOLUTE = frozenset({"feed_max_backlog"})


def counters_of(coordinator: LiveCoordinator) -> dict[str, int]:
    h = coordinator.sink.health()
    batcher = coordinator.batcher
    out = {
        "feed_items": h.items,
        "feed_subscriptions": h.subscribed,
        "feed_disconnects": h.disconnects,
        "feed_forced_reconnects": h.forced_reconnects,
        "feed_auth_retries": h.auth_retries,
        "feed_max_backlog": h.max_backlog,
        "feed_malformed": sum(h.malformed.values()),
        "fill_errors": coordinator.upkeep.fill_errors,
        "store_batches": batcher.batches,
        "store_rows": batcher.rows,
        "store_errors": batcher.errors,
        "flushed_on_stop": batcher.flushed_on_stop,
        "outside_session": coordinator.delivery.outside_session,
        "from_future": h.from_future,
        "late_quotes": coordinator.delivery.quotes.late,
        "late_bars": coordinator.session_data.late_bars,  # accepted; their windows revised
    }
    out.update({f"feed_malformed_{k}": v for k, v in sorted(h.malformed.items())})
    out.update({f"feed_malformed_reason_{k}": v for k, v in sorted(h.malformed_reasons.items())})
    out.update({f"feed_server_error_{k}": v for k, v in sorted(h.server_errors.items())})
    return out


def session_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v if k in _ABSOLUTE else v - before.get(k, 0) for k, v in after.items()}
