"""Same data and config give the same events and the same session_data, whatever the threads do."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path

from sessionflow import Event
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
