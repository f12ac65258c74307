"""One shard, run on a worker: a full system over its symbols and sessions.

The task receives the settings, the shard and the store's NAME, never a connection:
the worker opens the store itself, read-only, and builds its own session_data,
upkeep worker and history exactly as a single-process backtest does
(``build_system``). What comes back is plain data (session reports, filled minutes,
counters), small next to the bars replayed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sessionflow.events import BarSliceEvent, BatchEvent, SessionStartEvent
from sessionflow.session_data import SessionReport
from sessionflow.sharding.plan import Shard
from sessionflow.store import Store
from sessionflow.store.open import open_store
from sessionflow.system_manager import Settings, SystemManager, build_system

Filled = dict[tuple[date, str], list[int]]  # (session, symbol) -> filled minutes, epoch us


class ShardError(RuntimeError):
    """A shard failed on its worker; one line naming the shard and the reason.

    Built from a plain message so it crosses back to the client intact: an exception
    whose ``__init__`` takes other arguments than its message (the store errors) does not
    survive pickling, and the user would see Dask's error instead of the reason.
    """

    @classmethod
    def of(cls, shard: Shard, reason: str) -> ShardError:
        return cls(f"shard {shard.index} ({shard.label()}): {' '.join(reason.split())}")


@dataclass(frozen=True)
class ShardResult:
    shard: Shard
    reports: list[SessionReport]
    filled: Filled
    counters: dict[str, int]
    bars: int  # 1m bars received (the report's ``bars`` summed), for throughput
    seconds: float  # wall time of the replay on the worker
    worker: str = ""


@dataclass
class _FilledMinutes:
    """A batch consumer collecting filled minutes per session and symbol (the report's)."""

    session: date | None = None
    filled: Filled = field(default_factory=lambda: defaultdict(list))

    def __call__(self, ev: BatchEvent) -> None:
        if isinstance(ev, SessionStartEvent):
            self.session = ev.session
        elif isinstance(ev, BarSliceEvent) and ev.filled and self.session is not None:
            for sym, ts in zip(ev.bars.symbol.tolist(), ev.bars.ts_us.tolist(), strict=True):
                self.filled[(self.session, str(sym))].append(int(ts))


def shard_settings(settings: Settings, shard: Shard) -> Settings:
    return settings.model_copy(
        update={"symbols": list(shard.symbols), "start": shard.start, "end": shard.end}
    )


def build_shard(settings: Settings, shard: Shard, store: Store) -> SystemManager:
    """The shard's system, assembled by the one builder every backtest uses."""
    return build_system(shard_settings(settings, shard), store=store)


def run_shard(settings: Settings, shard: Shard, store_name: str) -> ShardResult:
    """Replay ``shard`` from the store called ``store_name`` (opened read-only here).

    Any failure is a :class:`ShardError` carrying the original one-line message.
    """
    try:
        return _run_shard(settings, shard, store_name)
    except ShardError:
        raise
    except Exception as exc:
        raise ShardError.of(shard, str(exc) or type(exc).__name__) from None


def _run_shard(settings: Settings, shard: Shard, store_name: str) -> ShardResult:
    store = open_store(store_name, read_only=True)
    try:
        system = build_shard(settings, shard, store)
        collect = _FilledMinutes()
        system.on_batch(collect)
        t0 = time.perf_counter()
        stopped = system.run()
        seconds = time.perf_counter() - t0
        if not stopped.joined:
            raise ShardError.of(shard, stopped.message())
        reports = _own_actions(system, shard, system.data_manager.reports)
    finally:
        store.close()
    bars = sum(r.bars for rep in reports for r in rep.rows)
    return ShardResult(
        shard, reports, dict(collect.filled), dict(system.counters), bars, seconds, _worker()
    )


def _own_actions(
    system: SystemManager, shard: Shard, reports: list[SessionReport]
) -> list[SessionReport]:
    """A later range's first session lists the actions since the previous session, as the
    single process does when it rolls history, not all those its loaded history spans."""
    if shard.previous is None or not reports:
        return reports
    actions = system.data_manager.upkeep.effective_actions(shard.previous, shard.start)
    first = reports[0].with_actions([a.to_dict() for a in actions])
    return [first, *reports[1:]]


def _worker() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"
