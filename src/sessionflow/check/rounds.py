"""Rounds that compare what a feature produced with a reference worked out another way.

Each round (corporate actions, export, PostgreSQL, store copy, sharding, dashboard,
import conflict policy) reaches the feature through the functions its command uses
and compares values, not counts, with something computed independently: factors by
hand from the actions and the raw bars, a file read back, the same backtest on
another store, a row-for-row reading through the public Store API. A round says
what it compared and lists each difference; one that raises fails, naming the error.
A round that cannot run here (no PostgreSQL binaries) is skipped with the reason,
except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from sessionflow.check.digest import RunDigest
from sessionflow.session_data import SessionReport
from sessionflow.store import open_store
from sessionflow.system_manager import Settings, build_system

MAX_LISTED = 6  # differences listed word for word per round; the count covers the rest
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
K = TypeVar("K", bound=Hashable)


class RoundSkipped(RuntimeError):
    """The round cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class RoundResult:
    """One reference round: pass, fail or skipped, what was compared, and every difference."""

    round: str
    status: str
    compared: str
    differences: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def failure(self) -> str:
        """The one line ``sessionflow check`` prints under FAIL."""
        return f"{self.round}: {'; '.join(self.differences) or 'failed'}"


@dataclass
class Findings:
    """What a round compared (phrases, with counts) and the differences it found."""

    compared: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def saw(self, text: str) -> None:
        self.compared.append(text)

    def differ(self, lines: Sequence[str]) -> None:
        self.differences.extend(lines)


def judged(name: str, body: Callable[[Findings], None]) -> RoundResult:
    """Run ``body``; its findings become the result. An exception fails the round, named."""
    found = Findings()
    t0 = time.monotonic()
    status = PASS
    try:
        body(found)
    except RoundSkipped as exc:
        if os.environ.get("CI") == "true":
            found.differ([f"required under CI=true: {exc}"])
        else:
            status = SKIPPED
            found.compared = [f"skipped: {exc}"]
    except Exception as exc:
        found.differ([f"raised {type(exc).__name__}: {' '.join(str(exc).split())}"])
    if found.differences:
        status = FAIL
        extra = len(found.differences) - MAX_LISTED
        if extra > 0:
            found.differences = [*found.differences[:MAX_LISTED], f"... {extra} more differences"]
    compared = "; ".join(found.compared) or "nothing compared"
    if status == PASS and not found.compared:
        status = FAIL
        found.differences = ["nothing was compared"]
    return RoundResult(name, status, compared, found.differences, time.monotonic() - t0)


def compare_rows(
    what: str,
    got: Mapping[K, tuple[Any, ...]],
    want: Mapping[K, tuple[Any, ...]],
    rel: float = 0.0,
) -> list[str]:
    """One line if ``got`` differs from the reference ``want`` (keyed rows): how many rows
    are missing, extra or different, and the first of each. Floats within ``rel``
    (relative) are equal; everything else must be equal exactly."""
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and not _same(got[k], want[k], rel)]
    if not (missing or extra or wrong):
        return []
    parts = []
    if wrong:
        k = min(wrong, key=repr)
        parts.append(f"{len(wrong)} of {len(want)} differ, first {_key(k)}: {got[k]} != {want[k]}")
    if missing:
        parts.append(f"{len(missing)} missing, first {_key(min(missing, key=repr))}")
    if extra:
        parts.append(f"{len(extra)} not in the reference, first {_key(min(extra, key=repr))}")
    return [f"{what}: {', '.join(parts)}"]


def _key(k: Hashable) -> str:
    return " ".join(str(x) for x in k) if isinstance(k, tuple) else str(k)


def _same(a: tuple[Any, ...], b: tuple[Any, ...], rel: float) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, float) and isinstance(y, float) and rel:
            if abs(x - y) > rel * max(abs(x), abs(y)):
                return False
        elif x != y:
            return False
    return True


@dataclass
class EngineRun:
    """What one backtest delivered (values per bar and window) and its session reports."""

    digest: RunDigest
    reports: list[SessionReport]


def engine_run(
    store_name: str | Path,
    symbols: Sequence[str],
    start: date,
    end: date,
    **settings: Any,
) -> EngineRun:
    """A backtest as ``sessionflow backtest`` builds it (``build_system``), on a store opened
    read-only by name (a DuckDB path or a PostgreSQL URL)."""
    store = open_store(store_name, read_only=True)
    try:
        config = Settings.load(
            store_path=store_name, symbols=list(symbols), start=start, end=end, **settings
        )
        system = build_system(config, store=store)
        digest = RunDigest()
        system.on_batch(digest)
        system.run()
        return EngineRun(digest, system.data_manager.reports)
    finally:
        store.close()


def report_values(reports: Sequence[SessionReport]) -> dict[Hashable, tuple[Any, ...]]:
    """Every field of every report row, and each session's actions, keyed for
    :func:`compare_rows`."""
    out: dict[Hashable, tuple[Any, ...]] = {}
    for rep in reports:
        out[(rep.session, "actions")] = tuple(str(a) for a in rep.actions)
        for r in rep.rows:
            out[(rep.session, r.symbol)] = tuple(str(v) for v in asdict(r).values())
    return out
