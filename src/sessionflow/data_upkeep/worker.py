"""The upkeep worker thread: one FIFO of jobs, run one at a time, results as futures.

In backtest the coordinator submits a ``check`` at each check interval of backtest
time and waits for it, so fills and derived bars land at the same backtest time
in every run (determinism); prefetch runs unawaited in between. In live mode the
same ``check`` runs on a wall-clock timer.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sessionflow.data_upkeep.derived import (
    aggregate_window,
    completed_windows,
    derive_bars,
    window_of,
)
from sessionflow.data_upkeep.gaps import GapTracker, minute_ranges
from sessionflow.data_upkeep.prefetch import SessionLoader, SessionPayload
from sessionflow.models import Bar, to_us
from sessionflow.session_data import SessionData
from sessionflow.store import BarBatch
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

log = logging.getLogger(__name__)


class GapFillSource(Protocol):
    """Anything that can answer 'which of these (symbol, minute) bars do you have?'."""

    def find_bars(self, wanted: Sequence[tuple[str, int]]) -> BarBatch: ...

    def data_version(self) -> int | None:
        """A counter that changes whenever new data may be found; None if unknown."""
        ...


@dataclass
class CheckResult:
    """What one upkeep check changed, for the coordinator to announce."""

    filled: list[Bar] = field(default_factory=list)
    derived: list[Bar] = field(default_factory=list)
    revised: list[Bar] = field(default_factory=list)
    fill_error: str | None = None


@dataclass
class _SymbolUpkeep:
    gaps: GapTracker
    emitted: dict[int, int]


class UpkeepWorker:
    """Thread 2. Owns gap tracking and derived-bar emission state for the current session."""

    def __init__(
        self,
        session_data: SessionData,
        loader: SessionLoader,
        fill_source: GapFillSource,
        calendar: ExchangeCalendar,
        max_fill_attempts: int = 5,
        jitter: Callable[[], None] | None = None,
    ) -> None:
        self.session_data = session_data
        self.loader = loader
        self.fill_source = fill_source
        self.calendar = calendar
        self.max_fill_attempts = max_fill_attempts
        self.fill_errors = 0
        self.last_fill_error: str | None = None
        self._jitter = jitter
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sessionflow-upkeep", daemon=True)
        self._state: dict[str, _SymbolUpkeep] = {}
        self._known_version: int | None = None
        self._prefetched: dict[Any, Future[SessionPayload]] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        self._jobs.put((job, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                if self._jitter:
                    self._jitter()
                fut.set_result(job())
            except BaseException as exc:
                log.exception("upkeep job failed")
                fut.set_exception(exc)

    def prefetch(self, session: SessionInfo) -> Future[SessionPayload]:
        """Start loading ``session`` in the background; :meth:`take_prefetched` collects it."""
        fut: Future[SessionPayload] = self.submit(lambda: self.loader.load(session))
        self._prefetched[session.date] = fut
        return fut

    def take_prefetched(self, session: SessionInfo) -> Future[SessionPayload]:
        fut = self._prefetched.pop(session.date, None)
        return fut if fut is not None else self.prefetch(session)

    def begin_session(
        self, session: SessionInfo, load_history: bool, store_version: int | None = None
    ) -> Future[None]:
        """Reset session state; ``store_version`` is the store's version when the data was read."""
        return self.submit(lambda: self._begin(session, load_history, store_version))

    def check(self, now: datetime, final: bool = False) -> Future[CheckResult]:
        return self.submit(lambda: self._check(to_us(now), final))

    def roll(self, ended: SessionInfo, upcoming: SessionInfo | None) -> Future[None]:
        return self.submit(lambda: self._roll(ended, upcoming))

    def _begin(self, session: SessionInfo, load_history: bool, version: int | None) -> None:
        self._known_version = version
        sd = self.session_data
        sd.start_session(session)
        self._state = {
            s: _SymbolUpkeep(GapTracker(session), {k: 0 for k in sd.derived_intervals})
            for s in sd.symbols
        }
        if load_history:
            past = self.calendar.previous_sessions(session.date, sd.trailing_days)
            for day in past:
                self._store_history(day, self.loader.load_session_bars(day))

    def _store_history(self, day: SessionInfo, bars: dict[str, list[Bar]]) -> None:
        sd = self.session_data
        for symbol, one_minute in bars.items():
            for k in sd.historical_intervals:
                series = one_minute if k == 1 else derive_bars(one_minute, day, k)
                sd.set_historical(symbol, k, day.date, series)

    def _roll(self, ended: SessionInfo, upcoming: SessionInfo | None) -> None:
        """Move the ended session into history; after the last session history stays as is."""
        if upcoming is None:
            return
        sd = self.session_data
        with sd.lock:
            bars = {s: list(sd.symbol(s).bars_1m) for s in sd.symbols}
        keep = self.calendar.previous_sessions(upcoming.date, sd.trailing_days)
        if ended.date in {d.date for d in keep}:
            self._store_history(ended, bars)
        sd.trim_historical(d.date for d in keep)

    def _check(self, now_us: int, final: bool) -> CheckResult:
        sd = self.session_data
        result = CheckResult()
        wanted: list[tuple[str, int]] = []
        with sd.lock:
            for symbol, st in self._state.items():
                data = sd.symbol(symbol)
                st.gaps.scan(now_us, data.has_minute)
                limit = self.max_fill_attempts + (1 if final else 0)
                wanted.extend((symbol, ts) for ts in st.gaps.due(limit))
        found, asked = self._fetch(wanted, result)
        with sd.lock:
            session = sd.current_session
            assert session is not None
            if asked:
                for st_symbol, ts in wanted:
                    self._state[st_symbol].gaps.attempted((ts,))
            for bar in found:
                if sd.add_bars([bar]):
                    self._state[bar.symbol].gaps.filled(to_us(bar.ts))
                    result.filled.append(bar)
            for symbol, st in self._state.items():
                data = sd.symbol(symbol)
                self._derive(session, symbol, st, now_us, result)
                expected = st.gaps.expected_so_far(now_us)
                quality = round(100.0 * data.received / expected, 4) if expected else 0.0
                if quality != data.bar_quality or expected != data.expected_so_far:
                    data.updated.add("quality")
                data.bar_quality, data.expected_so_far = quality, expected
                data.gaps = minute_ranges(st.gaps.open_gaps)
        return result

    def _fetch(self, wanted: list[tuple[str, int]], result: CheckResult) -> tuple[list[Bar], bool]:
        """Ask the fill source for ``wanted``; returns the bars found and whether it was asked."""
        if not wanted:
            return [], False
        version = self.fill_source.data_version()
        if version is not None and version == self._known_version:
            return [], False  # nothing written since we last looked: skip, keep the attempt
        try:
            batch = self.fill_source.find_bars(wanted)
            self._known_version = version
        except Exception as exc:
            self.fill_errors += 1
            self.last_fill_error = f"{type(exc).__name__}: {exc}"
            result.fill_error = self.last_fill_error
            log.warning("gap fill failed (will retry next check): %s", self.last_fill_error)
            return [], True
        found = [
            Bar(b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume, filled=True)
            for b in batch.iter_bars()
        ]
        return found, True

    def _derive(
        self, session: SessionInfo, symbol: str, st: _SymbolUpkeep, now_us: int, result: CheckResult
    ) -> None:
        data = self.session_data.symbol(symbol)
        filled_windows = {
            k: {window_of(session, k, to_us(b.ts)) for b in result.filled if b.symbol == symbol}
            for k in st.emitted
        }
        for k, done in st.emitted.items():
            series = data.bars_derived.setdefault(k, [])
            for j in sorted(w for w in filled_windows[k] if w < done):
                bar = aggregate_window(data.bars_1m, session, k, j)
                if bar is not None:
                    _replace_or_insert(series, bar)
                    result.revised.append(bar)
            upto = completed_windows(session, k, now_us)
            for j in range(done, upto):
                bar = aggregate_window(data.bars_1m, session, k, j)
                if bar is not None:
                    series.append(bar)
                    result.derived.append(bar)
            if upto > done:
                st.emitted[k] = upto
                data.updated.add("derived")


def _replace_or_insert(series: list[Bar], bar: Bar) -> None:
    for i, old in enumerate(series):
        if old.ts == bar.ts:
            series[i] = bar
            return
        if old.ts > bar.ts:
            series.insert(i, bar)
            return
    series.append(bar)
