"""One stored session replayed over the local Alpaca-protocol server (``sessionflow feed-server``).

Why: live mode can then be watched offline and without keys. The server streams
each minute's stored bars once its clock passes that minute's end, from ``start``
(default: one minute before the open, so a client has time to subscribe), and
answers REST backfill requests with every stored bar of the session, so a client
that joins late fills the morning as it would against Alpaca. The replay clock
starts when the first client subscribes, at ``start`` and ``rate`` times real time.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sessionflow.models import Bar
from sessionflow.store import Store
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.time_provider import ExchangeCalendar, SessionInfo
from sessionflow.time_provider.live_clock import WallTimeClock

LOCAL_KEY = "sessionflow-local-key"
LOCAL_SECRET = "sessionflow-local-secret"  # a dummy: only the local server accepts it
LEAD = timedelta(minutes=1)


@dataclass(frozen=True)
class ReplayPlan:
    """What one feed-server run sends: the session, the clock start and the bars."""

    session: SessionInfo
    start: datetime  # tz-aware, in the exchange zone
    bars: list[Bar]  # every stored regular bar of the session, by (open, symbol)

    @property
    def streamed(self) -> list[Bar]:
        """Bars opening at or after the clock start: these go over the websocket."""
        return [b for b in self.bars if b.ts >= self.start]


def parse_from(text: str | None) -> time | None:
    """``--from HH:MM`` (exchange-local wall time) or None."""
    if text is None:
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--from {text!r} is not an exchange-local HH:MM time") from None


def plan_replay(
    store: Store,
    calendar: ExchangeCalendar,
    symbols: Sequence[str],
    day: date,
    start: time | None = None,
) -> ReplayPlan:
    """The bars of ``symbols`` on session ``day``; ValueError names what is wrong."""
    session = calendar.session(day)
    stored = set(store.symbols())
    unknown = [s for s in symbols if s not in stored]
    if unknown:
        raise ValueError(f"symbols not in the store: {', '.join(unknown)}")
    open_local = session.open.astimezone(calendar.tz)
    begin = open_local - LEAD
    if start is not None:
        begin = datetime.combine(day, start, calendar.tz)
        if not session.open - LEAD <= begin < session.close:
            close_local = session.close.astimezone(calendar.tz)
            raise ValueError(
                f"--from {start:%H:%M} is outside the {day} session "
                f"({open_local:%H:%M}-{close_local:%H:%M} {calendar.tz.key})"
            )
    bars = list(store.load_bars(symbols, session.open, session.close).iter_bars())
    if not bars:
        raise ValueError(f"no stored bars of {', '.join(symbols)} in the {day} session")
    return ReplayPlan(session, begin, bars)


class ReplayClock:
    """The replay's time: ``start`` until ``begin()``, then ``rate`` times real time from
    there. The data and trading servers share it, so orders fill on the streamed bars'
    time; it begins when the first client arrives."""

    def __init__(self, start: datetime, rate: float) -> None:
        self.start, self.rate = start, rate
        self._clock: WallTimeClock | None = None
        self._lock = threading.Lock()

    def begin(self) -> WallTimeClock:
        with self._lock:
            if self._clock is None:
                self._clock = WallTimeClock(self.start, self.rate)
            return self._clock

    def now(self) -> datetime:
        with self._lock:
            clock = self._clock
        return self.start if clock is None else clock.now()


def start_replay(
    server: FakeAlpaca,
    plan: ReplayPlan,
    rate: float,
    timeout: float | None = None,
    clock: ReplayClock | None = None,
    ready: Callable[[], bool] | None = None,
) -> concurrent.futures.Future[None] | None:
    """Serve the session's bars over REST, wait for a subscriber (or for ``ready``, e.g.
    a trading stream listening), then stream on ``clock``.

    Returns the streaming future, or None if no client arrived within ``timeout``.
    """
    server.add_rest_bars(plan.bars)
    wait = timeout if timeout is not None else 1e9
    if not (server.wait_subscriptions(1, timeout=wait) or (ready is not None and ready())):
        return None
    return server.replay(plan.streamed, (clock or ReplayClock(plan.start, rate)).begin())
