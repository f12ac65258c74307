"""``run_check``: every round of ``sessionflow check`` on a throwaway store, as one report.

Rounds: the bad-input matrix, faults (SIGKILL mid-import and mid-backtest, a
failing fill source, a raising consumer, the store probes of ``store_probes``),
stop() from every state, a live session on the local Alpaca server
(``live_round``), the reference rounds (``reference``: corporate actions, export,
PostgreSQL, store copy, sharding, dashboard, import conflict policy, each compared
with values worked out another way), N determinism runs and M stress runs. Each round records
figures, not just pass/fail, so the report says how much was tried; a round that
ran nothing fails (it proves nothing).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sessionflow.check.bad_input import BadInputResult, run_bad_input
from sessionflow.check.determinism import DeterminismResult, run_determinism
from sessionflow.check.faults import (
    STOP_BUDGET_S,
    FaultResult,
    StopTiming,
    consumer_error,
    fill_source_outage,
    kill_mid_backtest,
    kill_mid_import,
    reference_digest,
    stop_timings,
    write_bar_csv,
)
from sessionflow.check.live_round import run_live_round
from sessionflow.check.pause_stop import pause_mid_wait, stop_with_blocked_consumer
from sessionflow.check.reference import run_reference_rounds
from sessionflow.check.rounds import PASS, SKIPPED, RoundResult
from sessionflow.check.store_probes import run_store_probes
from sessionflow.check.stores import CHECK_END, CHECK_START, CHECK_SYMBOLS, build_check_store
from sessionflow.check.stress import StressResult, run_stress
from sessionflow.demo import synthetic_bars
from sessionflow.time_provider import ExchangeCalendar

# determinism and stress use three sessions: 11-27, the 11-28 holiday, the 11-29 early close
SHORT_END = date(2024, 11, 29)


@dataclass
class CheckReport:
    bad_input: list[BadInputResult] = field(default_factory=list)
    faults: list[FaultResult] = field(default_factory=list)
    stops: list[StopTiming] = field(default_factory=list)
    live: list[FaultResult] = field(default_factory=list)
    reference: list[RoundResult] = field(default_factory=list)
    reference_ran: bool = True  # False with --no-reference: no rounds is then no failure
    determinism: DeterminismResult = field(default_factory=DeterminismResult)
    stress: StressResult = field(default_factory=StressResult)
    log_records: int = 0
    seconds: float = 0.0

    @property
    def stop_max_s(self) -> float:
        return max((s.seconds for s in self.stops), default=0.0)

    def failures(self) -> list[str]:
        """One line per failed round; a round with no runs is a failure, not a pass."""
        out = []
        for name, runs, failed in (
            ("bad input", len(self.bad_input), [b.case for b in self.bad_input if not b.ok]),
            ("faults", len(self.faults), [_said(f) for f in self.faults if not f.survived]),
            ("stop()", len(self.stops), [s.state for s in self.stops if not s.ok]),
            ("live", len(self.live), [_said(f) for f in self.live if not f.survived]),
        ):
            if not runs:
                out.append(f"{name}: no runs")
            elif failed:
                out.append(f"{name}: {', '.join(failed)}")
        if self.reference_ran and not self.reference:
            out.append("reference rounds: no runs")
        out.extend(r.failure() for r in self.reference if not r.ok)
        d, st = self.determinism, self.stress
        if d.runs < 2:
            out.append(f"determinism: {d.runs} run(s), nothing to compare")
        elif not d.identical:
            out.append(f"determinism: runs differ ({d.first_difference})")
        if not st.iterations:
            out.append("stress: no runs")
        elif st.violation_count:
            out.append(f"stress: {st.violation_count} violations")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures()

    def figures(self) -> dict[str, Any]:
        """The headline numbers, as the command prints them."""
        return {
            "bad_input_classes": len(self.bad_input),
            "bad_input_handled": sum(b.ok for b in self.bad_input),
            "faults_injected": sum(f.injected for f in self.faults),
            "fault_scenarios": len(self.faults),
            "fault_scenarios_survived": sum(f.survived for f in self.faults),
            "stop_states": len(self.stops),
            "stop_max_seconds": round(self.stop_max_s, 4),
            "live_rounds": len(self.live),
            "live_rounds_passed": sum(f.survived for f in self.live),
            "reference_rounds": len(self.reference),
            "reference_rounds_passed": sum(r.status == PASS for r in self.reference),
            "reference_rounds_skipped": sum(r.status == SKIPPED for r in self.reference),
            "determinism_runs": self.determinism.runs,
            "determinism_identical": self.determinism.identical,
            "stress_iterations": self.stress.iterations,
            "stress_violations": self.stress.violation_count,
            "ok": self.ok,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures": self.figures(),
            "bad_input": [asdict(b) for b in self.bad_input],
            "faults": [asdict(f) for f in self.faults],
            "stop": [{**asdict(s), "ok": s.ok} for s in self.stops],
            "stop_budget_seconds": STOP_BUDGET_S,
            "live": [asdict(f) for f in self.live],
            "reference": [{**asdict(r), "ok": r.ok} for r in self.reference],
            "determinism": {**asdict(self.determinism), "identical": self.determinism.identical},
            "stress": {**asdict(self.stress), "ok": self.stress.ok},
            "failures": self.failures(),
            "log_records": self.log_records,
            "seconds": round(self.seconds, 2),
        }


def _said(f: FaultResult, limit: int = 400) -> str:
    text = f"{f.fault} ({f.detail})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextlib.contextmanager
def _quiet_engine_logs() -> Iterator[_Counter]:
    """The injected faults make the engine log on purpose; count those records, don't print."""
    logger = logging.getLogger("sessionflow")
    counter = _Counter()
    saved = (logger.handlers, logger.propagate)
    logger.handlers, logger.propagate = [counter], False
    try:
        yield counter
    finally:
        logger.handlers, logger.propagate = saved


def run_check(
    runs: int = 5,
    stress: int = 3,
    workdir: Path | None = None,
    kill: bool = True,
    progress: Callable[[str], None] | None = None,
    reference: bool = True,
    sharding: bool = False,
) -> CheckReport:
    """Run every round in ``workdir`` (a temporary directory if None); ``reference=False``
    leaves out the reference rounds, ``sharding=True`` adds their Dask cluster round."""
    say = progress or (lambda text: None)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sf-check-")))
        logs = stack.enter_context(_quiet_engine_logs())
        t0 = time.monotonic()
        report = _run(runs, stress, workdir, kill, say, reference, sharding)
        report.log_records = logs.count
        report.seconds = time.monotonic() - t0
    return report


def _run(
    runs: int,
    stress: int,
    workdir: Path,
    kill: bool,
    say: Callable[[str], None],
    reference: bool = True,
    sharding: bool = False,
) -> CheckReport:
    calendar = ExchangeCalendar()
    store_path = workdir / "check.duckdb"
    build_check_store(store_path, calendar).close()
    symbols = list(CHECK_SYMBOLS)
    report = CheckReport()

    say("bad input matrix")
    report.bad_input = run_bad_input(workdir / "bad_input", store_path, calendar)

    say("faults")
    if kill:
        kill_store = workdir / "kill.duckdb"
        build_check_store(kill_store, calendar).close()
        csv = workdir / "big.csv"
        write_bar_csv(csv, synthetic_bars(calendar, ["KILL"], date(2024, 1, 2), date(2024, 2, 9)))
        report.faults.append(kill_mid_import(kill_store, csv, "KILL", calendar))
        report.faults.append(kill_mid_backtest(kill_store, symbols, CHECK_START, CHECK_END))
    clean = reference_digest(store_path, symbols, CHECK_START, CHECK_END)
    for fail_first, fail_every in ((3, 0), (0, 2), (0, 1)):
        report.faults.append(
            fill_source_outage(
                store_path, symbols, CHECK_START, CHECK_END, fail_first, fail_every, reference=clean
            )
        )
    for on_upkeep_thread in (False, True):
        report.faults.append(
            consumer_error(store_path, symbols, CHECK_START, CHECK_END, on_upkeep_thread)
        )

    report.faults.extend(
        run_store_probes(store_path, symbols, SHORT_END, workdir / "stores", calendar)
    )

    say("stop() from every state")
    report.stops = stop_timings(store_path, symbols, CHECK_START, CHECK_END)
    report.faults.append(pause_mid_wait(store_path, symbols, CHECK_START))
    report.faults.append(stop_with_blocked_consumer(store_path, symbols, CHECK_START))

    say("live session")
    report.live.append(run_live_round(workdir / "live"))

    report.reference_ran = reference
    if reference:
        report.reference = run_reference_rounds(
            workdir / "reference", store_path, symbols, calendar, say, sharding
        )

    say(f"determinism x{runs}")
    report.determinism = run_determinism(
        store_path, symbols, CHECK_START, SHORT_END, runs, extended_hours=True
    )

    say(f"stress x{stress}")
    report.stress = run_stress(store_path, symbols, CHECK_START, SHORT_END, stress)
    return report
