"""Concurrency stress: random scheduling delays, checks on the upkeep thread, invariants always.

Two observers, each independent of the engine's own bookkeeping:

- :class:`InvariantMonitor`, a batch callback on the coordinator thread, rebuilds
  every symbol's bars from the events alone and checks session_data against them
  after every batch: each (symbol, minute) delivered once, ``received`` never
  going down and equal to what was delivered, volume/high/low and quality equal to
  what the delivered bars imply, each derived bar equal to its window's delivered
  1m bars when it is emitted, every event at or after the one before it. At each
  session end, the delivered bars, extended-hours bars, quotes and ticks must be
  exactly the store's (nothing lost, nothing made up), and the bars delivered by a
  gap fill exactly those the replay lost on purpose: a bar the engine dropped and
  then refilled from the store counts as lost on first delivery.
- :class:`SnapshotReader`, a third thread that takes snapshots in a loop while the
  backtest runs and checks each one on its own terms (volume = sum of its bars,
  derived bars = :func:`aggregate_window` of its 1m bars, quality = its bars before
  ``expected_so_far`` over that), so a torn read shows up as a violation.
"""

from __future__ import annotations

import bisect
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sessionflow.check.stores import FaultyStore
from sessionflow.data_upkeep import aggregate_window
from sessionflow.events import (
    BarSliceEvent,
    BatchEvent,
    DerivedSliceEvent,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
    TickEvent,
)
from sessionflow.models import MINUTE, Quote, Tick, from_us, to_us
from sessionflow.session_data import SessionData, SymbolSnapshot
from sessionflow.store import DuckDBStore, Store
from sessionflow.system_manager import Settings, SystemManager, build_system
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

MINUTE_US = 60_000_000
MAX_KEPT = 20  # violations kept verbatim; the count covers all


def make_jitter(seed: int, chance: float = 0.03, max_s: float = 0.002) -> Callable[[], None]:
    """A scheduling perturbation for both worker threads (never used to wait for anything)."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def jitter() -> None:
        with lock:
            pause = rng.random() * max_s if rng.random() < chance else 0.0
        if pause:
            time.sleep(pause)

    return jitter


class Violations:
    """Thread-safe: both observers add here; the first few are kept word for word."""

    def __init__(self) -> None:
        self.count = 0
        self.kept: list[str] = []
        self._lock = threading.Lock()

    def add(self, where: str, text: str) -> None:
        with self._lock:
            self.count += 1
            if len(self.kept) < MAX_KEPT:
                self.kept.append(f"{where}: {text}")


def _q(received: int, expected: int) -> float:
    return round(100.0 * received / expected, 4) if expected else 0.0


@dataclass
class _SymbolSeen:
    """What the events said about one symbol this session."""

    present: npt.NDArray[np.bool_]
    bars: dict[int, tuple[float, float, float, float, int]] = field(default_factory=dict)
    filled: set[int] = field(default_factory=set)  # minutes whose bar came from a gap fill
    extended: set[int] = field(default_factory=set)  # ts_us of extended-hours bars
    quotes: dict[int, Quote] = field(default_factory=dict)
    ticks: list[Tick] = field(default_factory=list)
    volume: int = 0
    high: float = -math.inf
    low: float = math.inf
    received: int = 0


class InvariantMonitor:
    """Checks session_data against the event stream after every published batch."""

    def __init__(
        self,
        system: SystemManager,
        truth: Store,
        violations: Violations,
        lost: set[tuple[str, int]] | None = None,
    ) -> None:
        """``lost``: the (symbol, ts_us) the replay loses on purpose (``FaultyStore``);
        exactly these may arrive by gap fill, every other stored bar by replay."""
        self.sd = system.data_manager.session_data
        self.calendar = system.calendar
        self.extended_hours = system.settings.include_extended_hours
        self.truth = truth
        self.v = violations
        self.lost = lost if lost is not None else set()
        self.batches = 0
        self.bars = 0
        self.replayed = 0
        self.filled = 0
        self.extended = 0
        self.quotes = 0
        self.ticks = 0
        self.derived = 0
        self.revised = 0
        self.sessions = 0
        self._session: SessionInfo | None = None
        self._window = (0, 0)
        self._last_us = 0
        self._seen: dict[str, _SymbolSeen] = {}
        self._emitted: set[tuple[str, int, int]] = set()

    def on_batch(self, ev: BatchEvent) -> None:
        self.batches += 1
        try:
            if isinstance(ev, SessionStartEvent):
                self._start(ev)
            elif isinstance(ev, SessionEndEvent):
                self._end(ev)
            else:
                self._in_order(ev)
                if isinstance(ev, BarSliceEvent):
                    self._bars_in(ev)
                elif isinstance(ev, DerivedSliceEvent):
                    self._derived_in(ev)
                elif isinstance(ev, QuoteEvent):
                    self._quote_in(ev)
                    return
                else:
                    self._tick_in(ev)
                    return
            self._check_state(type(ev).__name__)
        except Exception as exc:  # a broken check must be seen, not end the run
            self.v.add("monitor", f"{type(exc).__name__}: {exc}")

    def _in_order(self, ev: BarSliceEvent | DerivedSliceEvent | QuoteEvent | TickEvent) -> None:
        t = to_us(ev.time)
        if t < self._last_us:
            self.v.add(
                "order", f"{type(ev).__name__} at {ev.time} after one at {from_us(self._last_us)}"
            )
        self._last_us = max(self._last_us, t)

    def _start(self, ev: SessionStartEvent) -> None:
        self._session = s = self.calendar.session(ev.session)
        n = s.minutes
        bounds = self.calendar.extended_bounds(s) if self.extended_hours else (s.open, s.close)
        self._window = (to_us(bounds[0]), to_us(bounds[1]))
        self._seen = {name: _SymbolSeen(np.zeros(n, dtype=np.bool_)) for name in self.sd.names}
        self._emitted = set()

    def _quote_in(self, ev: QuoteEvent) -> None:
        q = ev.quote
        seen = self._seen[q.symbol].quotes
        ts = to_us(q.ts)
        if not self._window[0] <= ts < self._window[1]:
            self.v.add("quote", f"{q.symbol} quote at {q.ts} outside the session's window")
        if ts in seen:
            self.v.add("quote", f"{q.symbol} quote at {q.ts} delivered twice")
        if ev.time != q.available_at:
            self.v.add("quote", f"{q.symbol} quote at {q.ts} delivered at {ev.time}")
        seen[ts] = q
        self.quotes += 1

    def _tick_in(self, ev: TickEvent) -> None:
        t = ev.tick
        if not self._window[0] <= to_us(t.ts) < self._window[1] or ev.time != t.ts:
            self.v.add("tick", f"{t.symbol} trade at {t.ts} delivered at {ev.time}")
        self._seen[t.symbol].ticks.append(t)
        self.ticks += 1

    def _bars_in(self, ev: BarSliceEvent) -> None:
        s = self._session
        assert s is not None
        open_us = to_us(s.open)
        b = ev.bars
        for sym, ts, o, h, lo, c, v in zip(b.symbol.tolist(), b.ts_us.tolist(), b.open.tolist(),
                                           b.high.tolist(), b.low.tolist(), b.close.tolist(),
                                           b.volume.tolist(), strict=True):  # fmt: skip
            seen = self._seen[sym]
            slot = (ts - open_us) // MINUTE_US
            if not ev.filled and to_us(ev.time) != ts + MINUTE_US:
                self.v.add("bar", f"{sym} {ts} delivered at {ev.time}, not when its minute ended")
            if (ts - open_us) % MINUTE_US or not 0 <= slot < s.minutes:
                self._extended_in(sym, ts, ev.filled)
                continue
            if seen.present[slot]:
                self.v.add("bar", f"{sym} minute {slot} of {s.date} delivered twice")
                continue
            seen.present[slot] = True
            seen.bars[slot] = (o, h, lo, c, v)
            seen.volume += v
            seen.high, seen.low = max(seen.high, h), min(seen.low, lo)
            self.bars += 1
            if ev.filled:
                seen.filled.add(int(slot))
                self.filled += 1
            else:
                self.replayed += 1

    def _extended_in(self, sym: str, ts: int, filled: bool) -> None:
        """A bar outside the regular minutes: an extended-hours bar, when those are replayed."""
        s = self._session
        assert s is not None
        ext = self._seen[sym].extended
        if filled or ts % MINUTE_US or not self._window[0] <= ts < self._window[1]:
            self.v.add("bar", f"{sym} {ts} is not a minute of session {s.date}")
        elif ts in ext:
            self.v.add("bar", f"{sym} extended-hours bar {ts} of {s.date} delivered twice")
        else:
            ext.add(ts)
            self.extended += 1

    def _derived_in(self, ev: DerivedSliceEvent) -> None:
        s = self._session
        assert s is not None
        k = ev.interval
        span = k * MINUTE_US
        open_us = to_us(s.open)
        b = ev.bars
        for sym, ts, o, h, lo, c, v in zip(b.symbol.tolist(), b.ts_us.tolist(), b.open.tolist(),
                                           b.high.tolist(), b.low.tolist(), b.close.tolist(),
                                           b.volume.tolist(), strict=True):  # fmt: skip
            j, off = divmod(ts - open_us, span)
            minutes = min(k, s.minutes - j * k)
            name = f"{sym} {k}m window {j} of {s.date}"
            if off or minutes <= 0 or ev.minutes != minutes:
                self.v.add("derived", f"{name}: not aligned to the open / wrong length")
                continue
            if to_us(ev.time) < ts + minutes * MINUTE_US:
                self.v.add("derived", f"{name}: emitted at {ev.time}, before the window ended")
            key = (sym, k, int(j))
            if not ev.revised and key in self._emitted:
                self.v.add("derived", f"{name}: emitted twice as new")
            if ev.revised and to_us(ev.time) <= ts + minutes * MINUTE_US:
                self.v.add("derived", f"{name}: marked revised at its first check")
            self._emitted.add(key)
            self.derived += 1
            self.revised += ev.revised
            parts = [self._seen[sym].bars[m] for m in range(j * k, j * k + minutes)
                     if m in self._seen[sym].bars]  # fmt: skip
            want = (
                (parts[0][0], max(p[1] for p in parts), min(p[2] for p in parts), parts[-1][3],
                 sum(p[4] for p in parts)) if parts else None
            )  # fmt: skip
            if want != (o, h, lo, c, v):
                self.v.add("derived", f"{name}: {(o, h, lo, c, v)} but its 1m bars give {want}")

    def _end(self, ev: SessionEndEvent) -> None:
        s = self._session
        assert s is not None
        self.sessions += 1
        stored = self.truth.load_bars(list(self.sd.names), s.open, s.close)
        open_us = to_us(s.open)
        for sym, seen in self._seen.items():
            mine = stored.symbol == sym
            want = set(((stored.ts_us[mine] - open_us) // MINUTE_US).tolist())
            got = set(np.flatnonzero(seen.present).tolist())
            if want - got:
                self.v.add("end", f"{sym} {s.date}: {len(want - got)} stored bars never delivered")
            if got - want:
                self.v.add("end", f"{sym} {s.date}: {len(got - want)} delivered bars not stored")
            lost = {(t - open_us) // MINUTE_US for x, t in self.lost if x == sym} & want
            if seen.filled - lost:
                self.v.add("end", f"{sym} {s.date}: {len(seen.filled - lost)} stored bars came by "
                                  "gap fill, not replay (lost on first delivery)")  # fmt: skip
        self._end_extras(s)
        for row in ev.report.rows:
            seen = self._seen[row.symbol]
            if row.bars != seen.received or row.quality != _q(row.bars, row.expected):
                self.v.add("end", f"{row.symbol} {s.date}: report {row.bars} bars "
                                  f"{row.quality}%, events {seen.received}")  # fmt: skip

    def _end_extras(self, s: SessionInfo) -> None:
        """Extended-hours bars, quotes and ticks: exactly the store's, each once."""
        names = list(self.sd.names)
        start, end = from_us(self._window[0]), from_us(self._window[1])
        bars = self.truth.load_bars(names, start, end, regular_only=False)
        quotes = self.truth.load_quotes(names, start, end, regular_only=not self.extended_hours)
        ticks = self.truth.load_ticks(names, start, end)
        for sym, seen in self._seen.items():
            mine = (bars.symbol == sym) & ~bars.regular
            want_ext = set(bars.ts_us[mine].tolist()) if self.extended_hours else set()
            want_q = {to_us(q.ts): q for q in quotes.iter_quotes() if q.symbol == sym}
            want_t = [t for t in ticks if t.symbol == sym]
            for kind, want, got in (
                ("extended-hours bars", want_ext, seen.extended),
                ("quotes", set(want_q), set(seen.quotes)),
                ("ticks", set(want_t), set(seen.ticks)),
            ):
                if want - got:
                    self.v.add("end", f"{sym} {s.date}: {len(want - got)} stored {kind} never "
                                      "delivered")  # fmt: skip
                if got - want:
                    self.v.add("end", f"{sym} {s.date}: {len(got - want)} delivered {kind} not "
                                      "stored")  # fmt: skip
            differ = [t for t, q in seen.quotes.items() if t in want_q and want_q[t] != q]
            if differ:
                self.v.add("end", f"{sym} {s.date}: {len(differ)} quotes differ from the store")
            if len(seen.ticks) != len(set(seen.ticks)) or seen.ticks != sorted(
                seen.ticks, key=lambda t: (t.ts, t.seq)
            ):
                self.v.add("end", f"{sym} {s.date}: ticks repeated or out of order")

    def _check_state(self, after: str) -> None:
        with self.sd.lock:
            for sym, seen in self._seen.items():
                data = self.sd.symbol(sym)
                received = data.received
                if received < seen.received:
                    self.v.add(after, f"{sym} received went down {seen.received} -> {received}")
                n = int(seen.present.sum())
                if received != n:
                    self.v.add(after, f"{sym} received {received} but {n} bars were delivered")
                seen.received = received
                if data.session_volume != seen.volume:
                    self.v.add(after, f"{sym} volume {data.session_volume} != {seen.volume}")
                high, low = data.session_high, data.session_low
                if n and (high != seen.high or low != seen.low):
                    self.v.add(after, f"{sym} high/low {high}/{low} != {seen.high}/{seen.low}")
                e = data.expected_so_far
                want = _q(int(seen.present[:e].sum()), e)
                if data.bar_quality != want:
                    self.v.add(after, f"{sym} quality {data.bar_quality} != {want} (expected {e})")


def check_snapshot(snap: SymbolSnapshot, session: SessionInfo) -> list[str]:
    """Everything that must hold inside one snapshot, checked from its own contents."""
    out = []
    bars = snap.bars_1m
    us = [to_us(b.ts) for b in bars]
    open_us, close_us = to_us(session.open), to_us(session.close)
    if us != sorted(set(us)):
        out.append("1m bars not strictly time-ordered")
    if us and not (open_us <= us[0] and us[-1] < close_us):
        out.append("a 1m bar outside the session")
    if snap.session_volume != sum(b.volume for b in bars):
        out.append(f"volume {snap.session_volume} != sum of bars {sum(b.volume for b in bars)}")
    high = max((b.high for b in bars), default=None)
    low = min((b.low for b in bars), default=None)
    if (snap.session_high, snap.session_low) != (high, low):
        out.append(f"high/low {snap.session_high}/{snap.session_low} != bars {high}/{low}")
    if snap.filled != sum(b.filled for b in bars):
        out.append("filled count != filled bars")
    e = snap.expected_so_far
    before = bisect.bisect_left(us, open_us + e * MINUTE_US)
    if snap.bar_quality != _q(before, e):
        out.append(f"quality {snap.bar_quality} != {before}/{e} bars")
    for a, b in snap.gaps:
        i = bisect.bisect_left(us, a)
        if i < len(us) and us[i] < b:
            out.append(f"gap [{a}, {b}) overlaps a bar")
        if b > open_us + e * MINUTE_US:
            out.append(f"gap [{a}, {b}) beyond expected_so_far={e}")
    for k, derived in snap.bars_derived.items():
        for d in derived:
            j = (d.ts - session.open) // (k * MINUTE)
            agg = aggregate_window(bars, session, k, j)
            if agg is None or (d.ts, d.minutes, d.open, d.high, d.low, d.close, d.volume) != (
                agg.ts, agg.minutes, agg.open, agg.high, agg.low, agg.close, agg.volume
            ):  # fmt: skip
                out.append(f"{k}m bar at {d.ts} != its 1m bars {agg}")
    return [f"{snap.symbol} {session.date}: {x}" for x in out]


class SnapshotReader(threading.Thread):
    """A third thread taking consistent snapshots in a loop while the backtest runs."""

    def __init__(
        self,
        sd: SessionData,
        calendar: ExchangeCalendar,
        violations: Violations,
        pause_s: float = 0.002,
    ) -> None:
        super().__init__(name="sessionflow-check-snapshots", daemon=True)
        self.sd = sd
        self.calendar = calendar
        self.v = violations
        self.stop = threading.Event()
        self.snapshots = 0
        self.pause_s = pause_s

    def run(self) -> None:
        # pausing as long as the last read took keeps the reader from holding the lock
        # most of the time (a snapshot is not cheap); the wait is on the stop event
        took = 0.0
        while not self.stop.wait(max(self.pause_s, took)):
            t0 = time.monotonic()
            try:
                snaps = self.sd.snapshots()
                for snap in snaps.values():
                    if snap.session is None:
                        continue
                    for problem in check_snapshot(snap, self.calendar.session(snap.session)):
                        self.v.add("snapshot", problem)
                self.snapshots += 1
            except Exception as exc:
                self.v.add("snapshot", f"{type(exc).__name__}: {exc}")
                return
            took = time.monotonic() - t0


@dataclass
class StressResult:
    iterations: int = 0
    sessions: int = 0
    batches: int = 0
    bars: int = 0
    replayed: int = 0  # bars first delivered by the replay
    filled: int = 0  # bars delivered by a gap fill (each one the replay lost on purpose)
    extended: int = 0
    quotes: int = 0
    ticks: int = 0
    derived: int = 0
    revised: int = 0
    snapshots: int = 0
    fill_errors: int = 0
    violation_count: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.violation_count == 0 and self.iterations > 0


def run_stress(
    store_path: Path,
    symbols: Sequence[str],
    start: date,
    end: date,
    iterations: int,
    seed: int = 0,
    drop_every: int = 40,
    fail_every: int = 3,
    switch_interval: float | None = 1e-4,
    extended_hours: bool = True,
) -> StressResult:
    """``iterations`` full backtests with jitter, lossy replay and a flaky fill source,
    extended hours included (so pre-market and after-hours bars are replayed too)."""
    result = StressResult()
    violations = Violations()
    calendar = ExchangeCalendar()
    t0 = time.monotonic()
    old_switch = sys.getswitchinterval()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)  # more thread switches, more interleavings
    try:
        for i in range(iterations):
            store = FaultyStore(store_path, drop_every=drop_every, fail_every=fail_every)
            truth = DuckDBStore(store_path, read_only=True)
            settings = Settings.load(
                store_path=store_path,
                symbols=list(symbols),
                start=start,
                end=end,
                checks_on_upkeep_thread=True,
                include_extended_hours=extended_hours,
            )
            system = build_system(settings, store=store, jitter=make_jitter(seed + i))
            monitor = InvariantMonitor(system, truth, violations, store.dropped_keys)
            system.on_batch(monitor.on_batch)
            reader = SnapshotReader(system.data_manager.session_data, calendar, violations)
            reader.start()
            try:
                system.run()
            except Exception as exc:
                violations.add(f"run {i}", f"{type(exc).__name__}: {exc}")
            finally:
                reader.stop.set()
                reader.join(10)
                truth.close()
                store.close()
            planned = len(system.data_manager.sessions)
            if monitor.sessions != planned:
                violations.add(f"run {i}", f"{monitor.sessions} of {planned} sessions ended")
            result.iterations += 1
            result.sessions += monitor.sessions
            result.batches += monitor.batches
            result.bars += monitor.bars
            result.replayed += monitor.replayed
            result.filled += monitor.filled
            result.extended += monitor.extended
            result.quotes += monitor.quotes
            result.ticks += monitor.ticks
            result.derived += monitor.derived
            result.revised += monitor.revised
            result.snapshots += reader.snapshots
            result.fill_errors += system.data_manager.upkeep.fill_errors
    finally:
        sys.setswitchinterval(old_switch)
    result.violation_count = violations.count
    result.violations = list(violations.kept)
    result.seconds = time.monotonic() - t0
    return result
