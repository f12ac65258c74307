"""The eight reference rounds of ``sessionflow check``, in order, on the check's work folder.

Each compares a feature's values with a reference worked out another way
(:mod:`sessionflow.check.rounds`): corporate actions, export, PostgreSQL, store
copy, sharding, the dashboard, the import conflict policy and live/backtest parity
(two sessions live on the local data and trading servers). One private PostgreSQL
server serves the two rounds that need it and is stopped when they are done. The
sharding round starts a 2-process Dask cluster and replays four times (20-30 s on 2
busy cores), so ``check`` runs it only when asked (``--sharding``); the tests always do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from sessionflow.check.actions_round import run_actions_round
from sessionflow.check.conflict_round import run_conflict_round
from sessionflow.check.export_round import run_export_round
from sessionflow.check.parity_round import run_parity_round
from sessionflow.check.rounds import SKIPPED, EngineRun, RoundResult, engine_run
from sessionflow.check.shard_round import run_shard_round
from sessionflow.check.store_rounds import private_postgres, run_copy_round, run_postgres_round
from sessionflow.check.stores import CHECK_END, CHECK_START
from sessionflow.check.web_round import run_dashboard_round
from sessionflow.time_provider import ExchangeCalendar

SHARDING_OFF = "not asked for (--sharding runs it: a 2-process Dask cluster, 20-30 s)"
ROUNDS = (
    "corporate actions",
    "export",
    "PostgreSQL",
    "store copy",
    "sharding",
    "dashboard",
    "import conflict policy",
    "parity",
)
PARITY_END = date(2024, 11, 29)  # 11-27, the 11-28 holiday, the 11-29 early close


def run_reference_rounds(
    workdir: Path,
    store_path: Path,
    symbols: Sequence[str],
    calendar: ExchangeCalendar,
    say: Callable[[str], None],
    sharding: bool = True,
) -> list[RoundResult]:
    """Every round on the check store (``store_path``) and stores of their own in ``workdir``;
    without ``sharding`` that round is listed as skipped, with the flag that runs it."""
    names = list(symbols)
    sessions = calendar.sessions(CHECK_START, CHECK_END)

    @functools.cache
    def clean() -> EngineRun:
        """The reference backtest on DuckDB, run once when a round first needs it."""
        return engine_run(store_path, names, CHECK_START, CHECK_END)

    out = []
    say("reference: corporate actions")
    out.append(run_actions_round(workdir / "actions", calendar))
    say("reference: export")
    out.append(run_export_round(workdir / "export", store_path, names, sessions, clean))
    with private_postgres() as pg:
        say("reference: PostgreSQL")
        out.append(run_postgres_round(store_path, names, CHECK_START, CHECK_END, clean, pg))
        say("reference: store copy")
        out.append(run_copy_round(workdir / "copy", store_path, pg))
    if sharding:
        say("reference: sharding (--workers 2)")
        out.append(run_shard_round(workdir / "actions" / "actions.duckdb", calendar))
    else:
        out.append(RoundResult("sharding", SKIPPED, f"skipped: {SHARDING_OFF}"))
    say("reference: dashboard")
    out.append(run_dashboard_round(store_path, names, CHECK_START, CHECK_END, calendar))
    say("reference: import conflict policy")
    out.append(run_conflict_round(workdir / "conflicts", calendar))
    say("reference: parity (live on the local servers = backtest)")
    out.append(run_parity_round(workdir / "parity", store_path, names[:2], CHECK_START, PARITY_END))
    return out
