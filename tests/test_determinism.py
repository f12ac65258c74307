"""Same data and config give the same events and the same session_data, whatever the threads do."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from sessionflow import Event
from sessionflow.check.determinism import one_run, run_determinism
from tests.helpers import demo_settings, run_collect


def fingerprint(events: list[Event], snapshots: dict[str, object]) -> tuple[str, str]:
    ev = hashlib.sha256("\n".join(repr(e) for e in events).encode()).hexdigest()
    sd = hashlib.sha256(repr(sorted(snapshots.items())).encode()).hexdigest()
    return ev, sd


def jitter(seed: int) -> Callable[[], None]:
    rng = random.Random(seed)

    def pause() -> None:
        # perturbs thread interleaving only; never used to wait for another thread
        if rng.random() < 0.02:
            time.sleep(rng.random() * 0.002)

    return pause


def test_repeated_runs_with_scheduling_jitter_are_identical(demo_store_path: Path) -> None:
    prints = []
    for seed, on_thread in ((None, False), (1, False), (2, True), (3, True)):
        settings = demo_settings(demo_store_path, checks_on_upkeep_thread=on_thread)
        system, events = run_collect(settings, jitter=None if seed is None else jitter(seed))
        prints.append(fingerprint(events, dict(system.data_manager.session_data.snapshots())))
    assert len(set(prints)) == 1


def test_twenty_runs_give_byte_identical_event_logs_and_reports(demo_store_path: Path) -> None:
    """20 runs of one two-session backtest (11-27, the 11-28 holiday, the 11-29 early close),
    each with different thread scheduling: the event log and the reports are the same bytes."""
    result = run_determinism(
        demo_store_path, ["NVDA", "QQQ"], date(2024, 11, 27), date(2024, 11, 29), runs=20,
        seed=11, faulty=False,
    )  # fmt: skip
    assert result.runs == 20
    assert result.first_difference is None, result.first_difference
    assert result.identical and len(result.event_hashes) == 20
    assert result.events_per_run > 1_300


def test_fills_and_retries_are_deterministic_too(demo_store_path: Path) -> None:
    """A lossy replay and a fill source failing every third call: same bytes every run."""
    days = (date(2024, 11, 27), date(2024, 11, 29))
    result = run_determinism(demo_store_path, ["NVDA", "QQQ"], *days, runs=4, seed=5)
    assert result.first_difference is None, result.first_difference
    assert result.identical
    events, _ = one_run(demo_store_path, ["NVDA", "QQQ"], *days, seed=None, on_upkeep_thread=True)
    assert events.count(b"filled=True") > 20  # the dropped bars came back as fills
