"""Determinism: the same backtest, run again and again under different thread scheduling.

Each run varies only what must not matter: random delays in both worker threads
(the ``jitter`` hook) and whether checks run on the upkeep thread. With ``faulty``
the replay is lossy and the fill source fails now and then (:class:`FaultyStore`),
so fills and retries are part of what must come out identical. The event log
(every event's repr, in delivery order) and the session reports (JSON) are
hashed; all runs must give the same two hashes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sessionflow.check.stores import FaultyStore
from sessionflow.check.stress import make_jitter
from sessionflow.events import Event
from sessionflow.session_data import SessionReport
from sessionflow.store import DuckDBStore
from sessionflow.system_manager import Settings, build_system


def event_log(events: Sequence[Event]) -> bytes:
    return "\n".join(repr(e) for e in events).encode()


def report_log(reports: Sequence[SessionReport]) -> bytes:
    return json.dumps([r.to_dict() for r in reports], sort_keys=True).encode()


@dataclass
class DeterminismResult:
    runs: int = 0
    events_per_run: int = 0
    event_hashes: list[str] = field(default_factory=list)
    report_hashes: list[str] = field(default_factory=list)
    first_difference: str | None = None
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return self.runs > 1 and len(set(self.event_hashes)) == len(set(self.report_hashes)) == 1


def one_run(
    store_path: Path,
    symbols: Sequence[str],
    start: date,
    end: date,
    seed: int | None,
    on_upkeep_thread: bool,
    faulty: bool = True,
    extended_hours: bool = False,
) -> tuple[bytes, bytes]:
    """The event log and report log of one backtest; ``seed=None`` runs without jitter."""
    store = (
        FaultyStore(store_path, drop_every=40, fail_every=3)
        if faulty
        else DuckDBStore(store_path, read_only=True)
    )
    settings = Settings.load(
        store_path=store_path,
        symbols=list(symbols),
        start=start,
        end=end,
        checks_on_upkeep_thread=on_upkeep_thread,
        include_extended_hours=extended_hours,
    )
    jitter = None if seed is None else make_jitter(seed)
    system = build_system(settings, store=store, jitter=jitter)
    events: list[Event] = []
    system.on_event(events.append)
    try:
        system.run()
    finally:
        store.close()
    return event_log(events), report_log(system.data_manager.reports)


def run_determinism(
    store_path: Path,
    symbols: Sequence[str],
    start: date,
    end: date,
    runs: int,
    seed: int = 0,
    faulty: bool = True,
    extended_hours: bool = False,
) -> DeterminismResult:
    """``runs`` backtests: the first unperturbed, the rest jittered, thread mode alternating."""
    result = DeterminismResult()
    t0 = time.monotonic()
    first: tuple[bytes, bytes] | None = None
    for i in range(runs):
        jitter_seed = None if i == 0 else seed + i
        logs = one_run(
            store_path, symbols, start, end, jitter_seed, i % 2 == 1, faulty, extended_hours
        )
        result.runs += 1
        result.event_hashes.append(hashlib.sha256(logs[0]).hexdigest()[:16])
        result.report_hashes.append(hashlib.sha256(logs[1]).hexdigest()[:16])
        if first is None:
            first = logs
            result.events_per_run = logs[0].count(b"\n") + 1
        elif result.first_difference is None and logs != first:
            result.first_difference = f"run {i}: " + _first_diff(first, logs)
    result.seconds = time.monotonic() - t0
    return result


def _first_diff(a: tuple[bytes, bytes], b: tuple[bytes, bytes]) -> str:
    for name, x, y in (("events", a[0], b[0]), ("reports", a[1], b[1])):
        lx, ly = x.split(b"\n"), y.split(b"\n")
        for n, (p, q) in enumerate(zip(lx, ly, strict=False)):
            if p != q:
                return f"{name} line {n}: {p[:200]!r} != {q[:200]!r}"
        if len(lx) != len(ly):
            return f"{name}: {len(lx)} lines != {len(ly)}"
    return "identical"
