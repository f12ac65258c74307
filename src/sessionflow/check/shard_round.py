"""The sharding round: a ``--workers 2`` run against the single process, history included.

The backtest runs on the corporate-actions store (AAA and BBB, 2024-11-22 .. 12-04,
splits and dividends), adjusted ``split_dividend`` with 5 trailing days, so the second
date shard starts on 12-02 and must load from the store the adjusted history that the
single process rolled into, one session and one action at a time. The cluster, the
plan, the run and the merge are what ``backtest --workers 2`` uses (``dask_client``,
``plan_shards``, ``run_sharded``, ``merge_results``). Compared with the single process:
every field of every session report, and a figure over the trailing days taken at
each session start on the same workers (days with bars, bars, volume, mean close and
first bar, per symbol and history interval), which the reports alone cannot see.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sessionflow.check.actions_round import (
    ACTIONS_END,
    ACTIONS_START,
    ACTIONS_SYMBOLS,
    build_actions_store,
)
from sessionflow.check.rounds import Findings, RoundResult, compare_rows, judged, report_values
from sessionflow.events import Event, SessionStartEvent
from sessionflow.models import from_us, to_us
from sessionflow.sharding import (
    Shard,
    build_shard,
    dask_client,
    merge_results,
    plan_shards,
    run_sharded,
    store_name,
)
from sessionflow.store.open import open_store
from sessionflow.system_manager import Settings, build_system
from sessionflow.time_provider import ExchangeCalendar

WORKERS = 2
Figures = dict[tuple[date, str, int], tuple[Any, ...]]


def history_figures(settings: Settings, shard: Shard, store: str) -> Figures:
    """Run ``shard`` as a worker does (``build_shard``) and take, at each session start, a
    figure over each symbol's trailing history per interval. Runs on a worker."""
    db = open_store(store, read_only=True)
    try:
        system = build_shard(settings, shard, db)
        dm, calendar = system.data_manager, system.calendar
        out: Figures = {}

        def probe(ev: Event) -> None:
            if not isinstance(ev, SessionStartEvent):
                return
            days = calendar.previous_sessions(ev.session, settings.trailing_days)
            for sym in shard.symbols:
                for k in settings.historical_intervals:
                    per_day = [dm.history(sym, k, d.date) for d in days]
                    bars = [b for day in per_day for b in day]
                    closes = sum(b.close for b in bars)
                    out[(ev.session, sym, k)] = (
                        sum(1 for day in per_day if day), len(bars), sum(b.volume for b in bars),
                        closes / len(bars) if bars else None,
                        f"{from_us(to_us(bars[0].ts)):%Y-%m-%d %H:%MZ}" if bars else None,
                    )  # fmt: skip

        system.on_event(probe)
        system.run()
        return out
    finally:
        db.close()


def run_shard_round(store_path: Path, calendar: ExchangeCalendar) -> RoundResult:
    """``store_path``: the corporate-actions store (built there when missing)."""

    def body(found: Findings) -> None:
        if not store_path.exists():
            build_actions_store(store_path, calendar)
        settings = Settings.load(
            store_path=store_path, symbols=list(ACTIONS_SYMBOLS), start=ACTIONS_START,
            end=ACTIONS_END, adjustment="split_dividend", trailing_days=5,
        )  # fmt: skip
        sessions = calendar.sessions(ACTIONS_START, ACTIONS_END)
        whole = Shard(0, tuple(sorted(ACTIONS_SYMBOLS)), ACTIONS_START, ACTIONS_END, None)
        name = store_name(store_path)
        single = build_system(settings)
        try:
            single.run()
        finally:
            single.store.close()
        single_history = history_figures(settings, whole, name)
        with dask_client(WORKERS) as client:
            shards = plan_shards(settings.symbols, sessions, WORKERS)
            merged = merge_results(run_sharded(client, settings, shards, name), settings.symbols)
            futures = [client.submit(history_figures, settings, s, name, pure=False)
                       for s in shards]  # fmt: skip
            sharded_history: Figures = {}
            for part in client.gather(futures):
                sharded_history.update(part)
        starts = sorted({s.start for s in shards})
        if len(starts) < 2:
            found.differ([f"the plan has one date range ({starts}): no shard loads history"])
        want = report_values(single.data_manager.reports)
        found.differ(compare_rows(f"--workers {WORKERS} session reports",
                                  report_values(merged.reports), want))  # fmt: skip
        found.differ(compare_rows(
            "trailing-history figure at session starts (days, bars, volume, mean close, first)",
            {(str(d), s, f"{k}m"): v for (d, s, k), v in sharded_history.items()},
            {(str(d), s, f"{k}m"): v for (d, s, k), v in single_history.items()},
        ))  # fmt: skip
        found.saw(
            f"--workers {WORKERS} ({len(shards)} shards, date ranges from "
            f"{', '.join(map(str, starts))}) vs one process: "
            f"{sum(len(r.rows) for r in single.data_manager.reports)} report rows and "
            f"{len(single_history)} trailing-history figures"
        )

    return judged("sharding", body)
