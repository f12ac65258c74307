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
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sessionflow.corporate_actions.adjust import Action, AdjustmentError, due_actions
from sessionflow.data_upkeep.derived import completed_windows
from sessionflow.data_upkeep.gaps import GapTracker
from sessionflow.data_upkeep.prefetch import SessionLoader, SessionPayload
from sessionflow.models import to_us
from sessionflow.session_data import SessionData
from sessionflow.session_data.grid import MINUTE_US, BarGrid, present_only, window
from sessionflow.session_data.quality import quality_array, quality_table
from sessionflow.store import BarBatch
from sessionflow.time_provider import ExchangeCalendar, SessionInfo
from sessionflow.worker_thread import WorkerThread

log = logging.getLogger(__name__)
_EMPTY = BarBatch.empty()


class GapFillSource(Protocol):
    """Anything that can answer 'which of these (symbol, minute) bars do you have?'."""

    def find_bars(self, wanted: Sequence[tuple[str, int]]) -> BarBatch: ...

    def data_version(self) -> int | None:
        """A counter that changes whenever new data may be found; None if unknown."""
        ...


@dataclass(frozen=True)
class DerivedSlice:
    """Derived bars of one window for several symbols (sorted by symbol)."""

    interval: int
    minutes: int
    bars: BarBatch
    rows: npt.NDArray[np.intp] | None = None  # each bar's symbol row in SessionData


@dataclass
class CheckResult:
    """What one upkeep check changed, for the coordinator to announce."""

    filled: BarBatch = field(default_factory=lambda: _EMPTY)
    filled_rows: npt.NDArray[np.intp] | None = None
    derived: list[DerivedSlice] = field(default_factory=list)
    revised: list[DerivedSlice] = field(default_factory=list)
    fill_error: str | None = None


class UpkeepWorker(WorkerThread):
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
        super().__init__(self._run, "sessionflow-upkeep")
        self._gaps: GapTracker | None = None
        self._emitted: dict[int, int] = {}
        self._due: int | float = 0  # no derived window completes before this time (epoch us)
        self._prefetched: dict[Any, Future[SessionPayload]] = {}
        self._known_version: int | None = None
        self._applied: list[Action] = []  # actions applied to history at the next begin
        self._quality_tables: dict[int, npt.NDArray[np.float64]] = {}  # by session minutes

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._jobs.put(None)
        if self.alive:
            self.join(timeout)

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
            except AdjustmentError as exc:  # bad data, one line: whoever waits reports it
                fut.set_exception(exc)
            except BaseException as exc:
                log.exception("upkeep job failed")
                fut.set_exception(exc)

    def prefetch(self, session: SessionInfo) -> Future[SessionPayload]:
        """Start loading ``session`` in the background; :meth:`take_prefetched` collects it."""
        fut: Future[SessionPayload] = self.submit(lambda: self.loader.load(session))
        self._prefetched[session.date] = fut
        return fut

    def prefetch_aside(self, session: SessionInfo) -> Future[SessionPayload]:
        """Load ``session`` on a thread of its own, so the read overlaps this thread's jobs.

        For the first session, whose read would otherwise wait for nothing but
        queue ahead of the history load. The loader only reads the store, and the
        stores give each thread its own cursor/connection, so no connection is shared.
        """
        fut: Future[SessionPayload] = Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                if self._jitter:
                    self._jitter()
                fut.set_result(self.loader.load(session))
            except BaseException as exc:
                log.exception("prefetch of %s failed", session.date)
                fut.set_exception(exc)

        threading.Thread(target=run, name="sessionflow-prefetch", daemon=True).start()
        return fut

    def take_prefetched(self, session: SessionInfo) -> Future[SessionPayload]:
        fut = self._prefetched.pop(session.date, None)
        return fut if fut is not None else self.prefetch(session)

    def begin_session(
        self, session: SessionInfo, load_history: bool, store_version: int | None = None
    ) -> Future[None]:
        """Reset session state; ``store_version`` is the store's version when the data was read."""
        return self.submit(lambda: self._begin(session, load_history, store_version))

    def begin_first(self, session: SessionInfo, payload: Future[SessionPayload]) -> Future[None]:
        """Begin the first session (with history) while ``payload`` is still being read.

        The store version the checks compare against is the payload's, as with
        :meth:`begin_session`; it is taken once the history is loaded.
        """

        def job() -> None:
            self._begin(session, True, None)
            self._known_version = payload.result().store_version

        return self.submit(job)

    def check(self, now: datetime, final: bool = False) -> Future[CheckResult]:
        """Queue a check on the upkeep thread."""
        return self.submit(lambda: self._check(to_us(now), final))

    def check_inline(
        self, now: datetime, final: bool = False, now_us: int | None = None
    ) -> CheckResult:
        """Run a check on the caller's thread (backtest lockstep); ``now_us`` is ``now``
        in microseconds if the caller has it.

        Safe because the coordinator, the only caller, never overlaps it with
        ``begin_session``/``roll`` (it waits for those) and prefetch touches no
        check state.
        """
        return self._check(to_us(now) if now_us is None else now_us, final)

    def roll(self, ended: SessionInfo, upcoming: SessionInfo | None) -> Future[None]:
        return self.submit(lambda: self._roll(ended, upcoming))

    def _begin(self, session: SessionInfo, load_history: bool, version: int | None) -> None:
        self._known_version = version
        sd = self.session_data
        sd.start_session(session)
        self._gaps = GapTracker(session, len(sd.names))
        self._emitted = {k: 0 for k in sd.derived_intervals}
        self._due = 0
        applied, self._applied = self._applied, []
        if load_history:
            # Raw days, scaled action by action as if rolled into history one session at a
            # time: a date shard starting here then holds the bits the single process rolled
            # to (a product of factors applied at once differs in the last bit).
            days = self.calendar.previous_sessions(session.date, sd.trailing_days)
            for i, day in enumerate(days):
                if i:
                    self._scale(self._effective(days[i - 1].date, day.date))
                sd.set_history(day.date, self._raw_grid(day))
            if days:
                self._scale(self._effective(days[-1].date, session.date))
            applied = self._effective(days[0].date if days else session.date, session.date)
        sd.applied_actions = applied
        sd.take_trailing_volume()

    def _raw_grid(self, day: SessionInfo) -> BarGrid:
        """A past session's bars as stored (renames followed, not adjusted)."""
        return self.session_data.grid_from_batch(self.loader.load_session_bars(day), day)

    def _scale(self, actions: list[Action]) -> None:
        """Scale the history held now by each action in ex-date order, one at a time."""
        self.session_data.adjust_history(actions, self.loader.adjustment)

    def _roll(self, ended: SessionInfo, upcoming: SessionInfo | None) -> None:
        """Move the ended session into history; after the last session history stays as is."""
        if upcoming is None:
            return
        sd = self.session_data
        keep = self.calendar.previous_sessions(upcoming.date, sd.trailing_days)
        with sd.lock:
            if ended.date in {d.date for d in keep} and sd.grid is not None:
                sd.set_history(ended.date, sd.grid)
            sd.trim_history(d.date for d in keep)
            # history becomes as of the upcoming session: its actions apply from now on
            self._applied = self._effective(ended.date, upcoming.date)
            self._scale(self._applied)

    def _effective(self, after: date, upto: date) -> list[Action]:
        """Actions with ``after < ex_date <= upto`` (none with ``adjustment = raw``)."""
        actions, _ = self.loader.actions()
        names = set(self.session_data.names)
        return due_actions(actions, after, upto, self.loader.adjustment, names)

    def effective_actions(self, after: date, upto: date) -> list[Action]:
        """What a session reports as applied when history rolls from ``after`` to ``upto``."""
        return self._effective(after, upto)

    def _check(self, now_us: int, final: bool) -> CheckResult:
        """Scan, fill, derive and rate in one lock hold, so no reader sees half a check.

        Only the fill query runs without the lock; the gaps it asks for are the ones
        the scan will mark, computed without marking them.
        """
        sd = self.session_data
        gaps = self._gaps
        assert gaps is not None
        result = CheckResult()
        version = self.fill_source.data_version()
        batch, tries = _EMPTY, 0
        if version is None or version != self._known_version:  # else nothing new to find
            limit = self.max_fill_attempts + (1 if final else 0)
            with sd.lock:
                rows, minutes = gaps.due(sd, limit, now_us)
            if len(rows):
                # the close is the last check: a query that fails then is retried at once
                budget = 1 + (self.max_fill_attempts if final else 0)
                batch, tries = self._query(rows, minutes, version, budget, result)
        with sd.lock:
            assert sd.grid is not None
            expected = gaps.scan(now_us, sd)
            if tries:
                gaps.attempts[minutes, rows] += tries
                self._apply_fill(batch, result)
            # before the next window completes, with nothing filled and no correction,
            # _derive has nothing to do (it keeps ``_due`` up to date)
            if len(result.filled) or now_us >= self._due or sd.has_corrections:
                self._derive(sd, sd.grid, now_us, result)
            self._rate(sd, expected, gaps.minutes)
        return result

    def _rate(self, sd: SessionData, expected: int, minutes: int) -> None:
        """Bar quality per symbol; its update flag is set where it changed (everywhere
        when another minute became expected). This runs every check, so the values come
        from a table of every (expected, received) pair: one gather instead of three
        array operations, in one compiled pass."""
        try:
            sd.rate(self._quality_table(minutes)[expected], expected)
            return
        except IndexError:  # a count beyond the session's minutes: never seen, kept exact
            quality = quality_array(sd.received, expected)
            sd.flags["quality"] |= (quality != sd.quality) | (expected != sd.expected_so_far)
            sd.quality[:] = quality
        sd.expected_so_far = expected

    def _quality_table(self, minutes: int) -> npt.NDArray[np.float64]:
        table = self._quality_tables.get(minutes)
        if table is None:
            table = self._quality_tables[minutes] = quality_table(minutes)
        return table

    def _query(
        self, rows: Any, minutes: Any, version: int | None, budget: int, result: CheckResult
    ) -> tuple[BarBatch, int]:
        """Ask the fill source (no lock held); returns what it found and the tries used."""
        sd = self.session_data
        assert sd.grid is not None
        open_us = sd.grid.open_us
        wanted = [
            (sd.names[r], open_us + m * MINUTE_US)
            for r, m in zip(rows.tolist(), minutes.tolist(), strict=True)
        ]
        for tries in range(1, budget + 1):
            try:
                batch = self.fill_source.find_bars(wanted)
            except Exception as exc:
                self.fill_errors += 1
                self.last_fill_error = f"{type(exc).__name__}: {exc}"
                result.fill_error = self.last_fill_error
                log.warning("gap fill failed (try %d of %d): %s", tries, budget, exc)
                continue
            self._known_version = version
            result.fill_error = None
            return batch, tries
        return BarBatch.empty(), budget

    def _apply_fill(self, batch: BarBatch, result: CheckResult) -> None:
        """Write found bars as fills and close their gaps. Call with the lock held."""
        sd = self.session_data
        assert sd.grid is not None
        if not len(batch):
            return
        b = batch.take(np.isin(batch.symbol, sd.names_array))
        order = np.lexsort((b.symbol.astype(str), b.ts_us))
        b = b.take(order)
        r = sd.index_of(b.symbol.tolist())
        ok = sd.write_bars(r, b.ts_us, b.open, b.high, b.low, b.close, b.volume, filled=True)
        b, r = b.take(ok), r[ok]
        sd.gap_open[(b.ts_us - sd.grid.open_us) // MINUTE_US, r] = False
        result.filled, result.filled_rows = b, r

    def _derive(self, sd: SessionData, grid: BarGrid, now_us: int, result: CheckResult) -> None:
        session = sd.current_session
        assert session is not None
        filled = result.filled
        # minutes changed after they may have been announced: fills and vendor corrections
        fixes = sd.take_corrections()
        if not fixes and not len(filled):  # the usual minute: only windows that closed
            for k, done in self._emitted.items():
                upto = completed_windows(session, k, now_us)
                if upto > done:
                    for j in range(done, upto):
                        result.derived.extend(
                            s for _, _, s in self._window(sd, grid, sd.derived[k], k, j, None)
                        )
                    self._emitted[k] = upto
            if len(result.derived) > 1:
                result.derived.sort(key=lambda s: (int(s.bars.ts_us[0]), s.minutes))
            self._due = self._next_due(session)
            sd.seal(self._sealed_slot(session))
            return
        changed_rows = np.array([r for r, _ in fixes], dtype=np.intp)
        changed_min = np.array([m for _, m in fixes], dtype=np.int64)
        if len(filled):
            changed_rows = np.concatenate([sd.index_of(filled.symbol.tolist()), changed_rows])
            changed_min = np.concatenate([(filled.ts_us - grid.open_us) // MINUTE_US, changed_min])
        revised: list[tuple[int, int, DerivedSlice]] = []
        fresh: list[tuple[int, int, DerivedSlice]] = []
        for k, done in self._emitted.items():
            target = sd.derived[k]
            upto = completed_windows(session, k, now_us)
            if upto == done and not len(changed_rows):
                continue  # the usual minute: no window closed, nothing filled or corrected
            for j in sorted(set((changed_min // k).tolist())):
                if j < done:
                    rows = np.unique(changed_rows[changed_min // k == j])
                    revised.extend(self._window(sd, grid, target, k, j, rows))
            for j in range(done, upto):
                fresh.extend(self._window(sd, grid, target, k, j, None))
            if upto > done:
                self._emitted[k] = upto
        self._due = self._next_due(session)
        sd.seal(self._sealed_slot(session))
        if revised:
            result.revised = [s for _, _, s in sorted(revised, key=lambda x: (x[0], x[1]))]
        if fresh:
            result.derived = [s for _, _, s in sorted(fresh, key=lambda x: (x[0], x[1]))]

    def _sealed_slot(self, session: SessionInfo) -> int:
        """The first 1m slot after every window announced so far, of any interval."""
        done = [n * k for k, n in self._emitted.items()]
        return min(max(done, default=0), session.minutes)

    def _next_due(self, session: SessionInfo) -> int | float:
        """When the earliest window not yet emitted completes (``completed_windows``'s
        rule: at its end, the last one at the close), so a check before then skips the
        per-interval arithmetic; infinity once every window is out."""
        due: int | float = float("inf")
        for k, done in self._emitted.items():
            if done * k < session.minutes:  # window ``done`` exists
                due = min(due, session.open_us + (done + 1) * k * MINUTE_US, session.close_us)
        return due

    def _window(
        self,
        sd: SessionData,
        grid: BarGrid,
        target: BarGrid,
        k: int,
        j: int,
        rows: Any,
    ) -> list[tuple[int, int, DerivedSlice]]:
        """Compute window ``j`` of interval ``k`` into ``target``; return the symbols having it."""
        got, o, h, lo, c, v = window(grid, k, j, rows)
        if rows is None:
            # a fresh window (its target slot still empty): a symbol without it came out
            # of the reduction as an empty slot (prices NaN, volume 0), so a whole-row
            # copy is a put, and the flags an or; only the event needs gathers
            target.put_row(j, got, o, h, lo, c, v)
            np.logical_or(sd.flags["derived"], got, out=sd.flags["derived"])
            r, o, h, lo, c, v = present_only(got, o, h, lo, c, v)  # after the put
            if len(r) == len(got):  # every symbol has it: no gathers at all
                r, symbols = sd.all_rows, sd.names_array
            else:
                if not len(r):
                    return []
                symbols = sd.names_array.take(r)
        else:
            if not got.any():
                return []
            r = rows[got]
            o, h, lo, c, v = o[got], h[got], lo[got], c[got], v[got]
            target.put_slot(r, j, o, h, lo, c, v)
            sd.flags["derived"][r] = True
            symbols = sd.names_array[r]
        ts = target.open_us + j * k * MINUTE_US
        minutes = target.slot_minutes(j)
        stamps = np.empty(len(r), dtype=np.int64)
        stamps.fill(ts)  # np.full's wrapper costs more
        bars = BarBatch(symbols, stamps, o, h, lo, c, v, sd.all_regular[: len(r)])
        return [(ts, minutes, DerivedSlice(k, minutes, bars, r))]
