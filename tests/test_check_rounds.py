"""The check's rounds judge values, count each kind of data, and fail when they ran nothing.

Each test failed on the code before issue 15, item 7: ``CheckReport.ok`` was
``all([])`` for an empty round, the stress round counted replayed and filled bars as
one figure and saw no quotes, ticks or extended-hours bars, and the fault rounds
compared only counts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console

from sessionflow.check.determinism import DeterminismResult
from sessionflow.check.digest import RunDigest, compare
from sessionflow.check.faults import FaultResult, reference_digest
from sessionflow.check.runner import CheckReport
from sessionflow.check.stores import (
    CHECK_START,
    CHECK_SYMBOLS,
    EXTENDED_MINUTES,
    build_check_store,
)
from sessionflow.check.stress import InvariantMonitor, StressResult, Violations, run_stress
from sessionflow.cli.check_cmd import render
from sessionflow.events import DerivedSliceEvent, QuoteEvent
from sessionflow.store import DuckDBStore
from sessionflow.system_manager import build_system
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import demo_settings

SYMS = list(CHECK_SYMBOLS)


@pytest.fixture(scope="module")
def check_store(tmp_path_factory: pytest.TempPathFactory, calendar: ExchangeCalendar) -> Path:
    path = tmp_path_factory.mktemp("rounds") / "check.duckdb"
    build_check_store(path, calendar).close()
    return path


def _passing() -> CheckReport:
    ok = FaultResult("x", 1, True, "held")
    return CheckReport(
        faults=[ok],
        live=[ok],
        determinism=DeterminismResult(runs=2, event_hashes=["a", "a"], report_hashes=["b", "b"]),
        stress=StressResult(iterations=1),
    )


@pytest.mark.parametrize("empty", ["bad_input", "faults", "stops", "live"])
def test_a_round_that_ran_nothing_fails_and_says_so(empty: str) -> None:
    report = _passing()
    report.bad_input = []  # the bad-input round is empty in every case here ...
    report.stops = []
    assert not report.ok
    assert "bad input: no runs" in report.failures()
    assert "stop(): no runs" in report.failures()
    setattr(report, empty, [])
    name = {"bad_input": "bad input", "stops": "stop()"}.get(empty, empty)
    assert f"{name}: no runs" in report.failures()
    console = Console(record=True, width=200)
    render(console, report)
    text = console.export_text()
    assert "FAIL bad input: no runs" in text and "PASS" not in text


def test_one_determinism_run_compares_nothing_and_fails() -> None:
    report = _passing()
    report.determinism = DeterminismResult(runs=1, event_hashes=["a"], report_hashes=["b"])
    assert "determinism: 1 run(s), nothing to compare" in report.failures()


def test_stress_counts_replayed_filled_extended_quotes_and_ticks_apart(check_store: Path) -> None:
    result = run_stress(check_store, SYMS, CHECK_START, CHECK_START, 1, seed=3)
    assert result.violation_count == 0, result.violations
    assert result.sessions == 1
    assert result.filled > 0 and result.replayed > 0
    assert result.bars == result.replayed + result.filled
    assert result.extended == 2 * EXTENDED_MINUTES  # AAA before the open and after the close
    assert result.quotes > 0 and result.ticks > 0


def test_compare_names_a_changed_volume_high_and_derived_bar(check_store: Path) -> None:
    clean = reference_digest(check_store, SYMS, CHECK_START, CHECK_START)
    assert compare(clean, clean) == []
    (session,) = {d for d, _ in clean.figures}
    five = clean.series[(session, "AAA", 5)]
    first = min(five)
    o, h, lo, c, v = five[first]
    bent = RunDigest(
        series={**clean.series, (session, "AAA", 5): {**five, first: (o, h, lo, c, v + 1)}},
        figures={**clean.figures},
    )
    bars, volume, high, low = clean.figures[(session, "BBB")]
    bent.figures[(session, "BBB")] = (bars, volume * 2, high, low)
    text = "\n".join(compare(clean, bent))
    assert f"BBB {session} session volume {volume * 2} != {volume} (reference)" in text
    assert f"AAA {session} 5m bars: 1 of {len(five)} differ from the reference" in text
    lost = {("CCC", t) for t in list(clean.series[(session, "CCC", 1)])[:3]}
    cut = dataclasses.replace(clean, series=dict(clean.series), figures=dict(clean.figures))
    ccc = {t: b for t, b in clean.series[(session, "CCC", 1)].items() if ("CCC", t) not in lost}
    cut.series[(session, "CCC", 1)] = ccc
    gone = sum(b[4] for t, b in clean.series[(session, "CCC", 1)].items() if ("CCC", t) in lost)
    n, vol, hi, lw = clean.figures[(session, "CCC")]
    cut.figures[(session, "CCC")] = (n - 3, vol - gone, hi, lw)
    assert compare(clean, cut, lost) == []  # the lost minutes are taken out of the reference
    assert any("CCC" in line and "1m bars: 3 differ" in line for line in compare(clean, cut))


def test_monitor_flags_a_quote_repeated_late_and_out_of_order(check_store: Path) -> None:
    truth = DuckDBStore(check_store, read_only=True)
    settings = demo_settings(check_store, symbols=SYMS, start=CHECK_START, end=CHECK_START)
    system = build_system(settings, store=truth)
    violations = Violations()
    monitor = InvariantMonitor(system, truth, violations)
    first: list[QuoteEvent] = []

    def tap(ev: object) -> None:
        if isinstance(ev, QuoteEvent) and not first:
            first.append(ev)
        elif isinstance(ev, DerivedSliceEvent) and ev.interval == 15 and len(first) == 1:
            first.append(first[0])
            monitor.on_batch(first[0])  # the first quote again, half an hour later

    system.on_batch(monitor.on_batch)
    system.on_batch(tap)
    system.run()
    truth.close()
    text = "\n".join(violations.kept)
    assert "order: QuoteEvent at 2024-11-27 14:31:00+00:00 after one at" in text, text
    assert "quote at 2024-11-27 14:30:00+00:00 delivered twice" in text, text
    assert violations.count == 2, text
