"""sessionflow through its public API only, so engine improvements show up here unchanged.

Load = read the Parquet file and write it into a fresh DuckDB store
(``DuckDBStore.upsert_bars``), plus ``build_system``. Replay = ``system.run()`` at
speed 0 with one ``on_event`` consumer that takes every BarEvent and DerivedBarEvent,
one call each, and buffers its fields per series; at each session's end it reduces them
to ``Row.add``'s counts, volume/high/low and checksums per (symbol, session)
(``Row.add`` per bar, as the peers' consumers; ``_BufferedTally`` in the
``sessionflow_buffered`` row): the consumer's own figures, like the peers'. The consumer
also records when each bar was handed over (the event's time) and the bar's length
(``Row.deliver``), and counts deliveries out of order; the engine's own session figures
come from ``SessionEndEvent.report`` (``peers.job.FIGURES``). Both are compared with
numpy's by compare.py. ``noop=True``: a consumer that does nothing (the engine's own
cost per delivered bar); only the engine's figures are compared then.

``tamper`` (tests only) rewrites each event before the consumer sees it, returning the
event or a list of events (none: held back): a stand-in for a wrong engine, to show the
comparison catches it.

Afterwards the memory held by SessionData is measured without relying on its layout:
the object is copied (pickle round trip, thread locks recreated) while ``tracemalloc``
traces only the copy, and the traced bytes are divided by the number of bars it holds
(1m, derived, trailing history), counted through the public per-symbol snapshots.
"""

from __future__ import annotations

import gc
import io
import pickle
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from peers.hashes import bar_hashes, timing_hashes
from peers.job import (
    HASH_MASK,
    INTERVALS,
    SERIES,
    EngineResult,
    Job,
    Row,
    Rows,
    Session,
    Table,
    read_columns,
    read_sessions,
    timing_table,
)
from sessionflow.models import Bar, to_us


def _interval_of(minutes: int, offset_min: int, session_min: int) -> int:
    """Which derived series a bar belongs to, from its length and its offset from the open."""
    hits = [
        k for k in INTERVALS if offset_min % k == 0 and min(k, session_min - offset_min) == minutes
    ]
    if len(hits) != 1:
        raise ValueError(f"cannot tell the interval of a {minutes}m bar at +{offset_min}m")
    return hits[0]


class _LockFreePickler(pickle.Pickler):
    """Pickles any object graph, recreating thread locks instead of failing on them."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _RLOCK):
            return threading.RLock, ()
        if isinstance(obj, _LOCK):
            return threading.Lock, ()
        return NotImplemented


_RLOCK = type(threading.RLock())
_LOCK = type(threading.Lock())


def _session_data_memory(system: Any) -> dict[str, Any]:
    """tracemalloc-traced size of a faithful copy of the SessionData object graph.

    Independent of how SessionData stores things: the whole object is pickled after the
    run (locks recreated) and unpickled while tracemalloc traces only that copy. Stored
    bars are counted through the public snapshots (1m, derived, history, extended).
    """
    dm = system.data_manager
    sd = dm.session_data
    stored: Counter[str] = Counter()
    for sym in sd.symbols:
        snap = dm.snapshot(sym)
        stored["bars_1m"] += len(snap.bars_1m)
        stored["derived"] += sum(len(v) for v in snap.bars_derived.values())
        stored["extended"] += len(snap.extended_bars)
        stored["history"] += sum(
            len(bars) for per_day in snap.historical_bars.values() for bars in per_day.values()
        )
    buf = io.BytesIO()
    with sd.lock:
        _LockFreePickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(sd)
    blob = buf.getvalue()
    del buf
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    clone = pickle.loads(blob)
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del clone, blob
    total = sum(stored.values())
    out: dict[str, Any] = {
        "session_data_bytes": traced,
        "session_data_stored_bars": dict(stored),
        "session_data_bytes_per_stored_bar": round(traced / total, 1) if total else None,
        "session_data_method": "tracemalloc of an unpickled copy of SessionData after the run "
        "(last session + trailing history); bars counted from public snapshots",
    }
    nbytes = getattr(sd, "nbytes", None)
    if callable(nbytes):  # the engine's own figure, when it has one
        out["session_data_nbytes_reported"] = int(nbytes())
    return out


class _Tally:
    """The consumer: every 1m and derived bar into its (symbol, session) Row."""

    def __init__(self, sessions: list[Session]) -> None:
        self.minutes = {s.day: s.minutes for s in sessions}
        self.opens = {s.day: s.open_us for s in sessions}
        self.rows: Rows = {}
        self.reports: list[Any] = []
        self.day: date | None = None
        self.label = ""
        self.revised = 0
        self.order_errors = 0
        self.last_t: Any = None
        self.last_us = 0
        self.derived_seen = False  # a derived bar was delivered at ``last_t``

    def when(self, t: Any, derived: bool) -> int:
        """``t`` (an event's time) in microseconds; counts a delivery out of order: time
        going back, or a 1m bar after a derived bar of the same instant."""
        if t is not self.last_t and t != self.last_t:
            if self.last_t is not None and t < self.last_t:
                self.order_errors += 1
            self.last_t, self.last_us, self.derived_seen = t, to_us(t), False
        elif not derived and self.derived_seen:
            self.order_errors += 1
        if derived:
            self.derived_seen = True
        return self.last_us

    def _row(self, symbol: str) -> Row:
        key = (symbol, self.label)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row()
        return row

    def session_event(self, ev: Any) -> None:
        if hasattr(ev, "report"):  # SessionEndEvent
            self.reports.append(ev.report)
        else:  # SessionStartEvent
            self.day, self.label = ev.session, ev.session.isoformat()

    def bar(self, b: Any, at_us: int) -> None:
        row, ts_us = self._row(b.symbol), to_us(b.ts)
        row.add(1, ts_us, b.open, b.high, b.low, b.close, b.volume)
        row.deliver(1, ts_us, b.minutes, at_us)

    def derived_bar(self, b: Any, interval: int | None, at_us: int) -> None:
        """``interval`` from the event; None on a sessionflow whose events lack it."""
        ts_us = to_us(b.ts)
        if interval is None:
            interval = self.interval_of(b, ts_us)
        row = self._row(b.symbol)
        row.add(interval, ts_us, b.open, b.high, b.low, b.close, b.volume)
        row.deliver(interval, ts_us, b.minutes, at_us)

    def interval_of(self, b: Any, ts_us: int) -> int:
        assert self.day is not None
        offset = (ts_us - self.opens[self.day]) // 60_000_000
        return _interval_of(b.minutes, offset, self.minutes[self.day])


class _ColumnTally(_Tally):
    """The batch consumer, vectorised: it keeps each slice's columns with its ``rows``
    (positions in ``data_manager.symbols``) and, at each session's end, reduces them in
    one pass per series: counts, session volume/high/low and ``Row.add``'s checksum for
    every bar at once (``peers.hashes``), folded into the same ``Row`` objects."""

    CHUNK = 16_384  # rows hashed per pass: the temporaries stay in cache (5x faster)

    def __init__(self, sessions: list[Session], names: Sequence[str]) -> None:
        super().__init__(sessions)
        self.names = list(names)
        self.parts: dict[int, list[tuple[Any, ...]]] = {m: [] for m in SERIES}

    def session_event(self, ev: Any) -> None:
        super().session_event(ev)
        if hasattr(ev, "report"):  # SessionEndEvent
            self._fold()

    def columns(self, bars: Any, rows: Any, interval: int, minutes: int, at_us: int) -> None:
        b, n = bars, len(bars)
        length, at = np.full(n, minutes, np.int64), np.full(n, at_us, np.int64)
        self.parts[interval].append(
            (rows, b.ts_us, b.open, b.high, b.low, b.close, b.volume, length, at)
        )

    def _fold(self) -> None:
        """This session's slices into its Rows."""
        n = len(self.names)
        counts, sums, ats = {}, {}, {}
        volume, high, low = np.zeros(n, np.int64), np.full(n, -np.inf), np.full(n, np.inf)
        for m, parts in self.parts.items():
            counts[m], sums[m] = np.zeros(n, np.int64), np.zeros(n, np.uint64)
            ats[m] = np.zeros(n, np.uint64)
            if not parts:
                continue
            rows, ts, o, h, lo, c, v, length, at = (
                np.concatenate(col) for col in zip(*parts, strict=True)
            )
            counts[m] = np.bincount(rows, minlength=n)
            cols = (ts, o, h, lo, c, v)
            step = self.CHUNK
            for a in range(0, len(rows), step):
                part = [x[a : a + step] for x in cols]
                np.add.at(sums[m], rows[a : a + step], bar_hashes(*part))
                when = (ts[a : a + step], length[a : a + step], at[a : a + step])
                np.add.at(ats[m], rows[a : a + step], timing_hashes(*when))
            if m == 1:
                np.add.at(volume, rows, v)
                np.maximum.at(high, rows, h)
                np.minimum.at(low, rows, lo)
            parts.clear()
        seen = sum(counts.values())
        for i in np.flatnonzero(seen).tolist():
            row = self._row(self.names[i])
            for m in SERIES:
                row.n[m] += int(counts[m][i])
                row.sums[m] = (row.sums[m] + int(sums[m][i])) & HASH_MASK
                row.at[m] = (row.at[m] + int(ats[m][i])) & HASH_MASK
            row.volume += int(volume[i])
            row.high = max(row.high, float(high[i]))
            row.low = min(row.low, float(low[i]))


class _BufferedTally(_ColumnTally):
    """The per-bar consumer as a strategy that buffers what it is handed: one callback per
    event, and in it the bar's fields (symbol, ts, OHLCV, ...) appended to its series'
    list as it arrives. At each session's end the lists become columns, reduced by the
    batch consumer's fold (same counts, figures and checksums as ``Row.add``), instead of
    a ``Row.add`` with its tuple hash per bar. One flat list per series, not a tuple per
    bar: millions of live tuples would make every garbage collection walk them."""

    WIDTH = len(Bar._fields) + 1  # fields appended per bar: the bar's, then when

    def __init__(self, sessions: list[Session], names: Sequence[str]) -> None:
        super().__init__(sessions, names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.buffers: dict[int, list[Any]] = {m: [] for m in SERIES}
        self.keep_1m = self.buffers[1].extend
        self.at_1m = self.buffers[1].append

    def bar(self, b: Any, at_us: int) -> None:
        self.keep_1m(b)
        self.at_1m(at_us)

    def derived_bar(self, b: Any, interval: int | None, at_us: int) -> None:
        if interval is None:
            interval = self.interval_of(b, to_us(b.ts))
        buf = self.buffers[interval]
        buf.extend(b)
        buf.append(at_us)

    def session_event(self, ev: Any) -> None:
        if hasattr(ev, "report"):  # SessionEndEvent: buffered bars become columns
            w = self.WIDTH
            for m, buf in self.buffers.items():
                if not buf:
                    continue
                if len(buf) % w:
                    raise ValueError(f"a {m}m bar with other than {w} fields was delivered")
                n = len(buf) // w
                self.parts[m].append(
                    (
                        np.fromiter(map(self.index.__getitem__, buf[0::w]), np.intp, n),
                        np.fromiter(map(to_us, buf[1::w]), np.int64, n),
                        *(np.array(buf[i::w], dtype=np.float64) for i in (2, 3, 4, 5)),
                        np.array(buf[6::w], dtype=np.int64),
                        np.array(buf[7::w], dtype=np.int64),  # minutes
                        np.array(buf[w - 1 :: w], dtype=np.int64),  # when
                    )
                )
                buf.clear()
        super().session_event(ev)


def run(
    data: Path,
    job: Job,
    batch: bool = False,
    tamper: Callable[[Any], Any] | None = None,
    buffered: bool = False,
    noop: bool = False,
) -> EngineResult:
    """``batch=False``: ``on_event`` (one event per bar); ``True``: ``on_batch`` slices.

    Per bar, the consumer calls ``Row.add`` for each bar, as the peers' consumers do;
    ``buffered=True`` uses ``_BufferedTally`` instead (the ``sessionflow_buffered`` row);
    ``noop=True`` a consumer that keeps only the session reports."""
    from sessionflow import Settings, build_system
    from sessionflow.store import BarBatch, DuckDBStore

    sessions = read_sessions(data)
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp:
        store_path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        c = read_columns(data)
        store = DuckDBStore(store_path)
        store.upsert_bars(
            BarBatch(
                symbol=np.array(c.names, dtype=object)[c.code],
                ts_us=c.ts_us,
                open=c.open,
                high=c.high,
                low=c.low,
                close=c.close,
                volume=c.volume,
            )
        )
        symbols = sorted(c.names)
        del c
        system = build_system(
            Settings.load(
                store_path=store_path,
                symbols=symbols,
                start=sessions[0].day,
                end=sessions[-1].day,
                derived_intervals=list(INTERVALS),
            ),
            store=store,
        )
        load_s = time.perf_counter() - t0

        tally: _Tally
        if noop:
            tally = _Tally(sessions)
            _subscribe_noop(system, tally, batch)
        elif batch:
            if not hasattr(system, "on_batch"):
                raise RuntimeError("this sessionflow has no SystemManager.on_batch")
            tally = _ColumnTally(sessions, system.data_manager.symbols)
            system.on_batch(_tampered(_batch_consumer(tally), tamper))
        else:
            tally = (
                _BufferedTally(sessions, system.data_manager.symbols)
                if buffered
                else _Tally(sessions)
            )
            system.on_event(_tampered(_event_consumer(tally), tamper))
        t1, cpu1 = time.perf_counter(), time.process_time()
        system.run()
        replay_s = time.perf_counter() - t1
        replay_cpu_s = time.process_time() - cpu1  # every thread's; less moved by load

        figures = _report_figures(tally.reports)
        extra = _session_data_memory(system)
        extra["revised_derived_events"] = tally.revised
        extra["order_errors"] = tally.order_errors
        extra["consumer"] = ("noop " if noop else "") + ("on_batch" if batch else "on_event")
        extra["replay_cpu_s"] = replay_cpu_s
        store.close()

    if noop:  # nothing consumed: the bar counts are the engine's own
        bars_1m = sum(f[0] for f in figures.values())
        derived = {m: sum(f[1 + i] for f in figures.values()) for i, m in enumerate(INTERVALS)}
        return EngineResult({}, load_s, replay_s, bars_1m, derived, extra, figures=figures)
    result = EngineResult.from_rows(tally.rows, load_s, replay_s, extra=extra)
    result.timing, result.figures = timing_table(tally.rows), figures
    return result


def _report_figures(reports: list[Any]) -> Table:
    """The engine's own figures (``peers.job.FIGURES``) from its session reports."""
    out: Table = {}
    for rep in reports:
        day = rep.session.isoformat()
        for r in rep.rows:
            if r.bars or any(r.derived.values()):
                derived = (r.derived.get(m, 0) for m in INTERVALS)
                out[(r.symbol, day)] = (r.bars, *derived, r.volume, r.high, r.low)
    return out


def _tampered(consume: Callable[[Any], None], tamper: Callable[[Any], Any] | None) -> Any:
    """``consume``, or ``consume`` behind ``tamper`` (an event, or a list of events)."""
    if tamper is None:
        return consume

    def tampered(ev: Any) -> None:
        out = tamper(ev)
        for one in out if isinstance(out, list) else [out]:
            consume(one)

    return tampered


def _event_consumer(tally: _Tally) -> Callable[[Any], None]:
    from sessionflow import BarEvent, DerivedBarEvent, SessionEndEvent, SessionStartEvent

    has_interval = "interval" in DerivedBarEvent._fields
    when = tally.when

    def consume(ev: Any) -> None:
        if isinstance(ev, BarEvent):
            tally.bar(ev.bar, when(ev.time, False))
        elif isinstance(ev, DerivedBarEvent):
            at_us = when(ev.time, True)
            if ev.revised:
                tally.revised += 1
            else:
                tally.derived_bar(ev.bar, ev.interval if has_interval else None, at_us)
        elif isinstance(ev, SessionStartEvent | SessionEndEvent):
            tally.session_event(ev)

    return consume


def _batch_consumer(cols: _ColumnTally) -> Callable[[Any], None]:
    from sessionflow.events import (
        BarSliceEvent,
        DerivedSliceEvent,
        SessionEndEvent,
        SessionStartEvent,
    )

    when = cols.when

    def consume_batch(ev: Any) -> None:
        if isinstance(ev, BarSliceEvent):
            cols.columns(ev.bars, ev.rows, 1, 1, when(ev.time, False))
        elif isinstance(ev, DerivedSliceEvent):
            at_us = when(ev.time, True)
            if ev.revised:
                cols.revised += len(ev.bars)
            else:
                cols.columns(ev.bars, ev.rows, ev.interval, ev.minutes, at_us)
        elif isinstance(ev, SessionStartEvent | SessionEndEvent):
            cols.session_event(ev)

    return consume_batch


def _subscribe_noop(system: Any, tally: _Tally, batch: bool) -> None:
    """A consumer that does nothing with bars; it keeps the session reports only."""
    from sessionflow import SessionEndEvent

    def consume(ev: Any) -> None:
        if type(ev) is SessionEndEvent:
            tally.reports.append(ev.report)

    if batch:
        system.on_batch(consume)
    else:
        system.on_event(consume)
