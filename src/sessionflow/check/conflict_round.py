"""The import-conflict round: re-imports under ``--on-conflict error|replace|keep`` against a model.

A store holds five AAA minutes. Two files are imported on top, in one command as
``import bars one.csv two.csv`` does (``bar_job`` into ``run_import``): ``one.csv`` has a
stored minute with the same values, a stored minute with other values and two new
minutes; ``two.csv`` gives one of those new minutes other values and adds one more.
The reference is a few lines of Python applying the documented policy to dicts, file
after file: a differing stored row is replaced under ``error`` and ``replace`` and
left under ``keep``; two files disagreeing stop ``error`` with nothing written, the
later file wins under ``replace`` and the first stays under ``keep``. Compared: each
file's new/unchanged/replaced/kept counts, whether anything was written, and every
stored value afterwards.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sessionflow.check.rounds import Findings, RoundResult, compare_rows, judged
from sessionflow.importer import bar_job, run_import
from sessionflow.models import to_us
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar

Row = tuple[float, float, float, float, int]
Rows = dict[str, Row]  # minute (HH:MM UTC on 2024-11-27) -> OHLCV
DAY = "2024-11-27"
STORED: Rows = {f"14:3{m}": (10.0 + m, 11.0 + m, 9.0 + m, 10.5 + m, 100 + m) for m in range(5)}
ONE: Rows = {
    "14:30": STORED["14:30"],  # unchanged
    "14:31": (11.0, 12.0, 10.0, 11.75, 101),  # differs from the stored row
    "14:35": (15.0, 16.0, 14.0, 15.5, 105),  # new
    "14:36": (16.0, 17.0, 15.0, 16.5, 106),  # new, and two.csv disagrees
}
TWO: Rows = {"14:36": (16.0, 17.0, 15.0, 16.25, 106), "14:37": (17.0, 18.0, 16.0, 17.5, 107)}
CASES = (("error", (ONE,)), ("error", (ONE, TWO)), ("replace", (ONE, TWO)), ("keep", (ONE, TWO)))
COUNTS = ("new", "unchanged", "replaced", "kept")


def model(stored: Rows, files: tuple[Rows, ...], policy: str) -> tuple[list[Counter[str]], Rows]:
    """Per-file counts and the rows stored afterwards, by the documented rules."""
    if policy == "error":
        seen: Rows = {}
        for f in files:
            for k, v in f.items():
                if seen.setdefault(k, v) != v:
                    return [Counter() for _ in files], dict(stored)  # nothing written
    state, counts = dict(stored), []
    for f in files:
        c: Counter[str] = Counter()
        for k, v in f.items():
            if k not in state:
                c["new"] += 1
                state[k] = v
            elif state[k] == v:
                c["unchanged"] += 1
            elif policy == "keep":
                c["kept"] += 1
            else:
                c["replaced"] += 1
                state[k] = v
        counts.append(c)
    return counts, state


def _write_csv(path: Path, rows: Rows) -> Path:
    lines = ["symbol,timestamp,open,high,low,close,volume"]
    lines += [
        f"AAA,{DAY}T{k}:00+00:00,{o},{h},{lo},{c},{v}" for k, (o, h, lo, c, v) in rows.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _stored(store: DuckDBStore) -> Rows:
    start = datetime.fromisoformat(f"{DAY}T14:30:00+00:00")
    end = datetime(2024, 11, 27, 15, 0, tzinfo=UTC)
    b = store.load_bars(["AAA"], start, end)
    base = to_us(start)
    return {f"14:{30 + (ts - base) // 60_000_000}": (o, h, lo, c, v)
            for ts, o, h, lo, c, v in zip(b.ts_us.tolist(), b.open.tolist(), b.high.tolist(),
                                          b.low.tolist(), b.close.tolist(), b.volume.tolist(),
                                          strict=True)}  # fmt: skip


def run_conflict_round(workdir: Path, calendar: ExchangeCalendar) -> RoundResult:
    workdir.mkdir(parents=True, exist_ok=True)
    files = {id(ONE): _write_csv(workdir / "one.csv", ONE),
             id(TWO): _write_csv(workdir / "two.csv", TWO)}  # fmt: skip

    def body(found: Findings) -> None:
        base = workdir / "base.duckdb"
        store = DuckDBStore(base)
        try:
            result = run_import(
                store, [bar_job(_write_csv(workdir / "base.csv", STORED), calendar)]
            )
            if not result.committed:
                raise RuntimeError(f"the base import failed: {result.error}")
        finally:
            store.close()
        for n, (policy, given) in enumerate(CASES):
            name = f"--on-conflict {policy} with {' + '.join(files[id(f)].name for f in given)}"
            path = workdir / f"case{n}.duckdb"
            shutil.copyfile(base, path)
            store = DuckDBStore(path)
            try:
                jobs = [bar_job(files[id(f)], calendar) for f in given]
                result = run_import(store, jobs, policy)
                after = _stored(store)
            finally:
                store.close()
            counts, want = model(STORED, given, policy)
            written = any(sum(c.values()) for c in counts)
            if result.committed != written:
                found.differ([f"{name}: committed {result.committed}, the rules say {written}"])
            got_counts = {(files[id(f)].name,): tuple(getattr(j.report, k) for k in COUNTS)
                          for f, j in zip(given, jobs, strict=True)}  # fmt: skip
            want_counts = {(files[id(f)].name,): tuple(c[k] for k in COUNTS)
                           for f, c in zip(given, counts, strict=True)}  # fmt: skip
            if written:
                found.differ(compare_rows(f"{name}: counts (new, unchanged, replaced, kept)",
                                          got_counts, want_counts))  # fmt: skip
            found.differ(compare_rows(
                f"{name}: stored values", {(k,): v for k, v in after.items()},
                {(k,): v for k, v in want.items()},
            ))  # fmt: skip
        found.saw(
            f"{len(CASES)} re-imports (error alone, error/replace/keep with two disagreeing "
            "files): per-file counts, committed or not, and every stored value vs the rules"
        )

    return judged("import conflict policy", body)
