"""Assembly of the live data path: feed, REST gap filler, clock, schedule, coordinator.

Why here and not in DataManager: the DataManager stays one readable constructor
with one branch; everything live-specific is built in this function. ``LiveParts``
lets a caller replace the clock, the session schedule, the feed or the fill
source (tests drive time; the benchmark plays a synthetic session), while the
default is the real thing: wall time, the exchange calendar, Alpaca.

Symbols are normalised here (``normalize_symbol``) whichever way they came in
(``--symbols``, TOML, environment), so the feed subscribes to the one spelling.
The future-bar tolerance is meant for clock skew, a wall-time quantity: with a
faster replay clock (``--clock-rate N``) it is N times longer in clock time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sessionflow.data_upkeep import SessionLoader, UpkeepWorker
from sessionflow.data_upkeep.worker import GapFillSource
from sessionflow.feeds.base import Feed
from sessionflow.feeds.credentials import AlpacaCredentials
from sessionflow.models import normalize_symbol
from sessionflow.session_data import SessionData
from sessionflow.store import Store
from sessionflow.stream_coordinator import CoordinatorHooks, EventPublisher
from sessionflow.stream_coordinator.live import LiveCoordinator, LiveTiming
from sessionflow.stream_coordinator.live.store import StoreBatcher
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.time_provider.live_clock import WaitableClock, WallTimeClock
from sessionflow.time_provider.schedule import CalendarSchedule, SessionSchedule

if TYPE_CHECKING:  # system_manager builds this package: only its types here
    from sessionflow.execution_manager.broker import Broker
    from sessionflow.system_manager.settings import Settings

DELAYED_SIP_S = 15 * 60.0  # delayed_sip sends each bar this much after its minute


@dataclass
class LiveParts:
    """Optional replacements for the live defaults; None means the real one."""

    clock: WaitableClock | None = None
    schedule: SessionSchedule | None = None
    feed: Feed | None = None
    fill_source: GapFillSource | None = None
    environ: Mapping[str, str] | None = None  # where APCA_API_* keys are looked up
    broker: Broker | None = None  # a venue's broker (strategy/live.py); None: the fill model


def build_live(
    settings: Settings,
    store: Store,
    calendar: ExchangeCalendar,
    session_data: SessionData,
    loader: SessionLoader,
    publisher: EventPublisher,
    hooks: CoordinatorHooks,
    parts: LiveParts | None = None,
    jitter: Callable[[], None] | None = None,
) -> tuple[WaitableClock, UpkeepWorker, LiveCoordinator]:
    parts = parts or LiveParts()
    live = settings.live
    symbols = [normalize_symbol(s) for s in settings.symbols]
    creds: AlpacaCredentials | None = None
    if parts.feed is None or parts.fill_source is None:
        environ = os.environ if parts.environ is None else parts.environ
        creds = AlpacaCredentials.resolve(live.key_id, live.secret_key, environ)
    feed = parts.feed
    if feed is None:
        from sessionflow.feeds.alpaca import AlpacaFeed

        assert creds is not None
        feed = AlpacaFeed(
            symbols,
            creds,
            url=live.feed_url,
            feed=live.feed,
            quotes=live.quotes,
            trades=live.trades,
            backoff=(live.reconnect_min_seconds, live.reconnect_max_seconds),
        )
    clock = parts.clock or WallTimeClock()
    fill = parts.fill_source
    source_counters: Callable[[], dict[str, int]] | None = None
    if fill is None:
        from sessionflow.feeds.alpaca_rest import AlpacaRestGapFill

        assert creds is not None
        rest = AlpacaRestGapFill(
            creds,
            url=live.rest_url,
            feed=live.feed,
            timeout_s=live.rest_timeout_seconds,
            now=clock.now,
        )
        fill = rest

        def source_counters() -> dict[str, int]:
            return {"rest_rate_limited": rest.rate_limited}

    rate = clock.rate if isinstance(clock, WallTimeClock) else 1.0
    upkeep = UpkeepWorker(
        session_data,
        loader,
        fill,
        calendar,
        max_fill_attempts=settings.max_fill_attempts,
        jitter=jitter,
    )
    batcher = StoreBatcher(store, upkeep.submit, live.batch_items, live.batch_seconds)
    timing = LiveTiming(
        check_interval_s=settings.check_interval_seconds,
        # delayed_sip sends each bar 15 minutes after its minute: wait that long too
        grace_s=live.bar_grace_seconds + (DELAYED_SIP_S if live.feed == "delayed_sip" else 0),
        silence_timeout_s=live.silence_timeout_seconds,
        connect_timeout_s=live.connect_timeout_seconds,
        max_sessions=live.sessions,
        future_tolerance_s=live.future_tolerance_seconds * rate,
    )
    coordinator = LiveCoordinator(
        parts.schedule or CalendarSchedule(calendar),
        session_data,
        upkeep,
        loader,
        clock,
        feed,
        publisher,
        hooks,
        batcher,
        timing,
        source_counters,
    )
    return clock, upkeep, coordinator
