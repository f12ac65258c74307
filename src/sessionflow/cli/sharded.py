"""``backtest``/``report`` with ``--workers N`` or ``--scheduler ADDRESS``: sharded on Dask.

The command's output is the single process's: the merged session reports go through
the same tables, JSON and report rows. The run is validated first exactly as a single
run is (store, symbols, sessions), so a mistake is the same one line before any
cluster starts. Progress counts shards as they finish (stderr, terminal only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from sessionflow.cli.progress import Replay, _terminal
from sessionflow.results import BacktestResult
from sessionflow.sharding import (
    Merged,
    ShardResult,
    dask_client,
    merge_results,
    plan_shards,
    run_sharded,
    store_name,
)
from sessionflow.sharding.strategy import StrategyShardResult, run_strategy_shard
from sessionflow.sharding.strategy_merge import merge_backtests
from sessionflow.system_manager import Settings, build_system


@dataclass(frozen=True)
class ShardOptions:
    workers: int | None = None
    scheduler: str | None = None
    shard_sessions: int | None = None
    shard_symbols: int | None = None

    @property
    def active(self) -> bool:
        return self.workers is not None or self.scheduler is not None

    def check_given(self) -> None:
        """The shard sizes mean nothing without a cluster: say so rather than ignore them."""
        if not self.active and (self.shard_sessions or self.shard_symbols):
            raise ValueError("--shard-sessions/--shard-symbols need --workers or --scheduler")

    def check(self, settings: Settings) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise ValueError("--workers and --scheduler exclude each other: give one")
        if settings.mode != "backtest":
            raise ValueError(f"--workers/--scheduler shard backtests, not mode {settings.mode}")
        if settings.speed != 0:
            raise ValueError(
                f"--workers/--scheduler replay as fast as possible; speed {settings.speed:g} "
                "needs one process (leave --speed at 0)"
            )


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def local_workers(asked: int | None) -> int | None:
    """``--workers``, at most one single-threaded process per usable CPU (a note says so).

    More processes than CPUs only compete for them; 64 on 2 cores starved the cluster's
    own heartbeats until it logged ``CommClosedError`` tracebacks while closing.
    """
    if asked is None:
        return None
    cap = usable_cpus()
    if asked <= cap:
        return asked
    typer.echo(
        f"note: --workers {asked} capped at {cap}, the CPUs this process may use "
        "(one single-threaded worker process per CPU)",
        err=True,
    )
    return cap


def run(settings: Settings, opts: ShardOptions, as_json: bool) -> tuple[Replay, Merged]:
    """Plan, run on the cluster, merge. After a Ctrl-C: the completed sessions, interrupted."""
    opts.check(settings)
    system = build_system(settings)  # the single run's checks: store, symbols, sessions
    sessions = system.data_manager.sessions
    system.store.close()
    results: list[ShardResult] = []
    interrupted = False
    try:
        local = local_workers(opts.workers)
        with dask_client(local, opts.scheduler) as client:
            workers = local or max(1, len(client.scheduler_info()["workers"]))
            shards = plan_shards(
                settings.symbols, sessions, workers, opts.shard_symbols, opts.shard_sessions
            )
            with _progress(len(shards), as_json) as on_result:

                def done(result: ShardResult) -> None:
                    results.append(result)
                    on_result(result)

                run_sharded(client, settings, shards, store_name(settings.store_path), done)
    except KeyboardInterrupt:  # the cluster is closed by then; keep what completed
        interrupted = True
    merged = merge_results(results, settings.symbols)
    return Replay(merged.reports, interrupted, total=len(sessions)), merged


@dataclass(frozen=True)
class ShardedBacktest:
    """A per-symbol independent strategy over symbol groups, one per worker by default
    (``--shard-symbols`` sets the group size), merged into the single process's result."""

    settings: Settings
    opts: ShardOptions
    spec: str  # FILE.py:Class, the file made absolute for the workers
    params: dict[str, Any]

    @classmethod
    def of(
        cls, settings: Settings, opts: ShardOptions, spec: str, params: dict[str, Any]
    ) -> ShardedBacktest:
        """Checked before any cluster starts: raises ValueError (one line)."""
        opts.check(settings)
        if opts.shard_sessions is not None:
            raise ValueError(
                "--shard-sessions: a strategy's state and gtc orders cross sessions; "
                "strategy runs shard by symbols only (--shard-symbols)"
            )
        path, _, name = spec.rpartition(":")
        return cls(settings, opts, f"{Path(path).resolve()}:{name}", params)

    def run(self) -> BacktestResult:
        settings, opts = self.settings, self.opts
        system = build_system(settings)  # the single run's checks: store, symbols, sessions
        sessions = system.data_manager.sessions
        system.store.close()
        task = functools.partial(run_strategy_shard, spec=self.spec, params=self.params)
        results: list[StrategyShardResult] = []
        try:
            with dask_client(opts.workers, opts.scheduler) as client:
                workers = opts.workers or max(1, len(client.scheduler_info()["workers"]))
                per_group = opts.shard_symbols or math.ceil(len(set(settings.symbols)) / workers)
                shards = plan_shards(settings.symbols, sessions, workers, per_group, len(sessions))
                with _progress(len(shards), as_json=False) as on_result:

                    def done(result: StrategyShardResult) -> None:
                        results.append(result)
                        on_result(result)

                    store = store_name(settings.store_path)
                    run_sharded(client, settings, shards, store, done, task)
        except KeyboardInterrupt:  # the symbols of the shards that completed, marked so
            if not results:
                raise
            merged = merge_backtests(results)
            return dataclasses.replace(merged, complete=False, interrupted=True)
        return merge_backtests(results)


class _ShardProgress:
    """Shards done of all, with the bars replayed per second of wall time so far."""

    def __init__(self, progress: Progress | None, shards: int) -> None:
        self.progress = progress
        self.task = progress.add_task("", total=shards) if progress is not None else None
        self.t0 = time.monotonic()
        self.bars = 0

    def __call__(self, result: ShardResult | StrategyShardResult) -> None:
        self.bars += result.bars
        if self.progress is None or self.task is None:
            return
        rate = self.bars / max(time.monotonic() - self.t0, 1e-9)
        text = f"{result.shard.label()} done  {rate:,.0f} bars/s"
        self.progress.update(self.task, advance=1, description=text)


@contextmanager
def _progress(shards: int, as_json: bool) -> Iterator[_ShardProgress]:
    console = _terminal(as_json)
    if console is None:
        yield _ShardProgress(None, shards)
        return
    columns = (
        TextColumn("[bold]sharded"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn("shards"),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        yield _ShardProgress(bar, shards)
