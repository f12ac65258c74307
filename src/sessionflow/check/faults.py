"""Faults the engine must survive, each run for real and judged by what is left behind.

- a process killed with SIGKILL inside an import's MERGE, and mid-backtest: the
  DuckDB file must open, hold either none or all of the file's rows, and a re-run
  of the import must give the same checksum twice;
- a gap-fill source that raises: counted in ``fill_errors``, retried at the next
  check, every recoverable bar recovered, the session completed, and what was
  delivered (1m and derived bar values, session volume, high, low) equal to a
  clean run's (:mod:`sessionflow.check.digest`), not only the counts;
- a consumer callback that raises: ``ConsumerError``, state STOPPED, both threads
  joined, no deadlock;
- ``stop()`` from every state, including from inside a callback: back within 2 s
  with both workers joined.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sessionflow.check.digest import RunDigest, compare
from sessionflow.check.stores import FaultyStore, store_checksum
from sessionflow.events import BarSliceEvent, BatchEvent, DerivedSliceEvent, SessionStartEvent
from sessionflow.importer import import_bars
from sessionflow.models import from_us
from sessionflow.session_data import SessionReport
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.stream_coordinator.publisher import ConsumerError
from sessionflow.system_manager import Settings, State, SystemManager, build_system
from sessionflow.time_provider import ExchangeCalendar

STOP_BUDGET_S = 2.0


@dataclass(frozen=True)
class FaultResult:
    """One injected fault: how many times, whether everything held, and what was seen."""

    fault: str
    injected: int
    survived: bool
    detail: str


@dataclass(frozen=True)
class StopTiming:
    state: str
    seconds: float
    joined: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.joined and self.seconds < STOP_BUDGET_S and self.error is None


def _copy_store(src: Path, dst: Path) -> None:
    for suffix in ("", ".wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


def run_child_until(args: Sequence[str], marker: str, timeout: float = 60.0) -> list[str]:
    """Run ``python -m sessionflow.check.child ARGS``; SIGKILL it on a line starting with
    ``marker``. Returns the lines it printed; raises if it never printed ``marker``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionflow.check.child", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"child printed no {marker!r} in {timeout}s: {seen}") from None
            if line is None:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"child ended before {marker!r}: {seen} {err[-2000:]}")
            seen.append(line)
            if line.startswith(marker):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child, by its pid; a no-op once the SIGKILL above landed
        proc.wait(timeout)
        reader.join(timeout)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"child exited with {proc.returncode}, not killed: {seen}")
    return seen


def write_bar_csv(path: Path, batch: BarBatch) -> int:
    """A plain CSV of ``batch`` (no symbol column) as a vendor would ship it."""
    with path.open("w") as fh:
        fh.write("timestamp,open,high,low,close,volume\n")
        cols = (batch.ts_us.tolist(), batch.open.tolist(), batch.high.tolist(),
                batch.low.tolist(), batch.close.tolist(), batch.volume.tolist())  # fmt: skip
        for ts, o, h, lo, c, v in zip(*cols, strict=True):
            fh.write(f"{from_us(ts).isoformat()},{o},{h},{lo},{c},{v}\n")
    return len(batch)


def kill_mid_import(
    store_path: Path, csv_path: Path, symbol: str, calendar: ExchangeCalendar
) -> FaultResult:
    """SIGKILL an import inside its MERGE; the file then holds none or all of its rows."""
    store = DuckDBStore(store_path)
    before = store_checksum(store)
    store.close()
    reference_path = store_path.with_name(store_path.stem + ".reference.duckdb")
    _copy_store(store_path, reference_path)
    reference = DuckDBStore(reference_path)
    rows = import_bars(reference, csv_path, calendar, symbol).imported
    full = store_checksum(reference)
    reference.close()

    run_child_until(["import", str(store_path), str(csv_path), symbol], "merging")

    store = DuckDBStore(store_path)  # must open after the crash
    after = store_checksum(store)
    landed = {before: "rolled back: 0 new rows", full: f"committed: all {rows} rows"}.get(after)
    reruns = []
    for _ in range(2):
        import_bars(store, csv_path, calendar, symbol)
        reruns.append(store_checksum(store))
    store.close()
    idempotent = reruns == [full, full]
    detail = (
        f"SIGKILL inside the MERGE of {rows} rows; store {landed or 'PARTIAL: ' + after}; "
        f"re-import x2 {'gives the same checksum' if idempotent else 'DIFFERS'}"
    )
    return FaultResult("kill -9 mid-import", 1, landed is not None and idempotent, detail)


def kill_mid_backtest(
    store_path: Path, symbols: Sequence[str], start: date, end: date, at_session: int = 2
) -> FaultResult:
    """SIGKILL a backtest at its ``at_session``-th session start; the store is untouched."""
    store = DuckDBStore(store_path)
    before = store_checksum(store)
    store.close()
    seen = run_child_until(
        ["backtest", str(store_path), ",".join(symbols), start.isoformat(), end.isoformat()],
        f"session {_nth_session(start, end, at_session)}",
    )
    store = DuckDBStore(store_path)
    after = store_checksum(store)
    settings = Settings.load(store_path=store_path, symbols=list(symbols), start=start, end=end)
    system = build_system(settings, store=store)
    system.run()
    sessions = len(system.data_manager.reports)
    store.close()
    ok = after == before and sessions == len(system.data_manager.sessions)
    detail = (
        f"SIGKILL at {seen[-1]}; store checksum {'unchanged' if after == before else 'CHANGED'}; "
        f"a new backtest ran all {sessions} sessions"
    )
    return FaultResult("kill -9 mid-backtest", 1, ok, detail)


def _nth_session(start: date, end: date, n: int) -> str:
    sessions = ExchangeCalendar().sessions(start, end)
    if len(sessions) < n + 1:
        raise ValueError(f"need at least {n + 1} sessions between {start} and {end}")
    return sessions[n - 1].date.isoformat()


def _truth(store: DuckDBStore, reports: Sequence[SessionReport]) -> dict[tuple[date, str], int]:
    """Bars per (session, symbol) in the store itself: what a lossless replay must end with."""
    calendar = ExchangeCalendar()
    out: dict[tuple[date, str], int] = {}
    for rep in reports:
        s = calendar.session(rep.session)
        symbols = [r.symbol for r in rep.rows]
        batch = store.load_bars(symbols, s.open, s.close)
        for sym in symbols:
            out[(rep.session, sym)] = int((batch.symbol == sym).sum())
    return out


def reference_digest(store_path: Path, symbols: Sequence[str], start: date, end: date) -> RunDigest:
    """What a clean run (no faults) delivers: the values the fault rounds must match."""
    store = DuckDBStore(store_path, read_only=True)
    settings = Settings.load(store_path=store_path, symbols=list(symbols), start=start, end=end)
    system = build_system(settings, store=store)
    digest = RunDigest()
    system.on_batch(digest)
    try:
        system.run()
    finally:
        store.close()
    return digest


def fill_source_outage(
    store_path: Path,
    symbols: Sequence[str],
    start: date,
    end: date,
    fail_first: int = 0,
    fail_every: int = 0,
    drop_every: int = 40,
    reference: RunDigest | None = None,
) -> FaultResult:
    """Replay drops bars, the fill source raises on some calls; every bar must come back,
    with the values a clean run delivers (``reference``; run here when None)."""
    if reference is None:
        reference = reference_digest(store_path, symbols, start, end)
    faulty = FaultyStore(store_path, drop_every, fail_first, fail_every)
    truth = DuckDBStore(store_path, read_only=True)
    settings = Settings.load(
        store_path=store_path,
        symbols=list(symbols),
        start=start,
        end=end,
        checks_on_upkeep_thread=True,
        max_fill_attempts=max(5, fail_first + 2),
    )
    system = build_system(settings, store=faulty)
    filled = [0]
    digest = RunDigest()

    def count(ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent) and ev.filled:
            filled[0] += len(ev.bars)

    system.on_batch(count)
    system.on_batch(digest)
    error = None
    try:
        system.run()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    upkeep = system.data_manager.upkeep
    reports = system.data_manager.reports
    want = _truth(truth, reports)
    got = {(rep.session, r.symbol): r.bars for rep in reports for r in rep.rows}
    truth.close()
    faulty.close()
    lost = sum(want[k] - got[k] for k in want)
    # every minute without a bar, recovered or not, is in the report as a gap
    reported = all(
        r.gaps_found - r.gaps_filled == r.expected - r.bars for rep in reports for r in rep.rows
    )
    down = fail_every == 1  # never answers: nothing can come back, all must be reported
    differences = compare(reference, digest, faulty.dropped_keys if down else frozenset())
    kind = (
        "every call" if down else f"first {fail_first} calls" if fail_first else
        f"every {fail_every}nd call" if fail_every == 2 else f"every {fail_every}th call"
    )  # fmt: skip
    ok = (
        error is None
        and len(reports) == len(system.data_manager.sessions)
        and upkeep.fill_errors == faulty.find_failures > 0
        and reported
        and (lost == faulty.dropped and filled[0] == 0 if down else lost == 0)
        and (down or filled[0] == faulty.dropped)
        and not differences
    )
    detail = (
        f"find_bars raised on {kind} ({faulty.find_failures} of {faulty.find_calls}); "
        f"fill_errors={upkeep.fill_errors}; {faulty.dropped} bars dropped from replay, "
        f"{filled[0]} recovered, {lost} not recoverable"
        f"{' and all reported as gaps' if reported else ' and NOT all reported as gaps'}; "
        f"{len(reports)} sessions completed; "
        + (
            "values (1m, 5m, 15m bars, volume, high, low) equal a clean run's"
            + (" but for the lost minutes" if down else "")
            if not differences
            else "DIFFERS from a clean run: " + "; ".join(differences)
        )
        + (f"; run raised {error}" if error else "")
    )
    return FaultResult(f"fill source down ({kind})", faulty.find_failures, ok, detail)


def consumer_error(
    store_path: Path, symbols: Sequence[str], start: date, end: date, on_upkeep_thread: bool
) -> FaultResult:
    """A callback raises mid-run: ConsumerError, STOPPED, both threads joined, no hang."""
    settings = Settings.load(
        store_path=store_path,
        symbols=list(symbols),
        start=start,
        end=end,
        checks_on_upkeep_thread=on_upkeep_thread,
    )
    system = build_system(settings)
    sessions = [0]

    def strategy(ev: BatchEvent) -> None:
        if isinstance(ev, SessionStartEvent):
            sessions[0] += 1
        if isinstance(ev, DerivedSliceEvent) and sessions[0] == 2:
            raise ZeroDivisionError("strategy bug")

    system.on_batch(strategy)
    system.start()
    finished = system.wait(30)
    t0 = time.monotonic()
    system.stop(STOP_BUDGET_S)
    took = time.monotonic() - t0
    dm = system.data_manager
    joined = not dm.coordinator.alive and not dm.upkeep.alive
    err = system.error
    ok = (
        finished
        and isinstance(err, ConsumerError)
        and isinstance(err.__cause__, ZeroDivisionError)
        and system.state is State.STOPPED
        and joined
        and took < STOP_BUDGET_S
    )
    where = "upkeep thread" if on_upkeep_thread else "coordinator thread"
    detail = (
        f"checks on the {where}: {type(err).__name__ if err else 'no error'}, "
        f"state {system.state.value}, threads {'joined' if joined else 'ALIVE'}, "
        f"stop() {took:.3f}s"
    )
    return FaultResult("consumer callback raises", 1, ok, detail)


def stop_timings(
    store_path: Path, symbols: Sequence[str], start: date, end: date
) -> list[StopTiming]:
    """stop() from each state; ``running``/``paused`` use real-time speed, so hours remain."""

    def build(speed: float) -> SystemManager:
        settings = Settings.load(
            store_path=store_path, symbols=list(symbols), start=start, end=end, speed=speed
        )
        return build_system(settings)

    def timed(state: str, system: SystemManager) -> StopTiming:
        t0 = time.monotonic()
        system.stop(STOP_BUDGET_S)
        took = time.monotonic() - t0
        dm = system.data_manager
        joined = not dm.coordinator.alive and not dm.upkeep.alive
        error = None if system.error is None else repr(system.error)
        return StopTiming(state, took, joined and system.state is State.STOPPED, error)

    out = [timed("before start", build(0.0))]
    for state in ("running", "paused"):
        system = build(1.0)
        first = threading.Event()
        system.on_batch(lambda ev, first=first: first.set())  # type: ignore[misc]
        system.start()
        if not first.wait(10):
            out.append(StopTiming(state, 0.0, False, "no event within 10 s"))
            continue
        if state == "paused":
            system.pause()
        out.append(timed(state, system))
    system = build(0.0)
    system.run()
    out.append(timed("after finish", system))
    out.append(_stop_from_callback(build(0.0)))
    return out


def _stop_from_callback(system: SystemManager) -> StopTiming:
    """A strategy calls stop() on the coordinator thread, inside its own callback."""
    took: list[float] = []

    def strategy(ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent) and not took:
            t0 = time.monotonic()
            system.stop(STOP_BUDGET_S)
            took.append(time.monotonic() - t0)

    system.on_batch(strategy)
    error = None
    try:
        system.run()
    except Exception as exc:
        error = repr(exc)
    dm = system.data_manager
    joined = not dm.coordinator.alive and not dm.upkeep.alive and system.state is State.STOPPED
    return StopTiming("from a callback", took[0] if took else 0.0, joined and bool(took), error)
