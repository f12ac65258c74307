"""The benchmark's "outputs equal" check catches a wrong engine (issue 11, item 1).

Runs the numpy reference and sessionflow's two consumers (per-bar and columnar) on a
small job through benchmarks/peers, then has a stand-in wrong engine (sessionflow with
one event rewritten before its consumer sees it) and expects the comparison to fail.
The columns of the old check (counts, volume, high, low) alone would have passed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionflow.events import BarEvent, DerivedBarEvent

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
OLD_COLUMNS = {"n_1m", "n_5m", "n_15m", "volume", "high", "low"}


@pytest.fixture(scope="module")
def peers() -> Iterator[Any]:
    sys.path.insert(0, str(BENCH))
    try:
        import peers.job

        yield peers.job
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def compare() -> Iterator[Any]:
    sys.path.insert(0, str(BENCH))
    try:
        import compare

        yield compare
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def job_data(
    peers: Any, compare: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path, Path]:
    """The job, its data file and numpy's values CSV (its timing and figures beside it)."""
    from peers import engine_numpy

    tmp = tmp_path_factory.mktemp("bench")
    job = peers.Job(3, 5)
    data = peers.ensure_data(job, tmp)
    ref = tmp / "numpy.csv"
    compare.write_outputs(engine_numpy.run(data, job), ref)
    return job, data, ref


def _run_sessionflow(
    compare: Any,
    job_data: tuple[Any, Path, Path],
    tmp_path: Path,
    tamper: Callable[[Any], Any] | None = None,
    **kind: bool,
) -> dict[str, Any]:
    """sessionflow's consumer values, delivery times and engine figures against numpy's,
    as compare.py compares them (``kind``: ``batch``, ``buffered``, ``noop``)."""
    from peers import engine_sessionflow

    job, data, ref = job_data
    res = engine_sessionflow.run(data, job, tamper=tamper, **kind)
    engine = "sessionflow" + ("_noop" if kind.get("noop") else "")
    run = {"engine": engine, **compare.write_outputs(res, tmp_path / "sessionflow.csv")}
    reference = {
        "csv": str(ref),
        **{f"{k}_csv": str(ref.with_suffix(f".{k}.csv")) for k in ("timing", "figures")},
    }
    result: dict[str, Any] = compare.compare_outputs(reference, run)
    return result


class _Once:
    """Rewrites the ``nth`` event that ``pick`` accepts; leaves every other one alone."""

    def __init__(self, pick: Callable[[Any], bool], change: Callable[[Any], Any], nth: int):
        self.pick, self.change, self.left, self.done = pick, change, nth, False

    def __call__(self, ev: Any) -> Any:
        if not self.done and self.pick(ev):
            if self.left == 0:
                self.done = True
                return self.change(ev)
            self.left -= 1
        return ev


@pytest.mark.parametrize(("batch", "buffered"), [(False, False), (True, False), (False, True)])
def test_sessionflow_consumers_equal_the_reference(
    peers: Any,
    compare: Any,
    job_data: tuple[Any, Path, Path],
    tmp_path: Path,
    batch: bool,
    buffered: bool,
) -> None:
    cmp = _run_sessionflow(compare, job_data, tmp_path, batch=batch, buffered=buffered)
    assert cmp["equal"], cmp
    for part in ("values", "time", "figures"):
        assert cmp[part]["equal"] and cmp[part]["rows"] == 3 * 5, part
    assert {f"sum_{m}m" for m in peers.SERIES} <= set(peers.COLUMNS)


def _swap_open_close(ev: Any) -> Any:
    return ev._replace(bar=ev.bar._replace(open=ev.bar.close, close=ev.bar.open))


def _double_high(ev: Any) -> Any:
    return ev._replace(bar=ev.bar._replace(high=ev.bar.high * 2))


@pytest.mark.parametrize(
    ("name", "pick", "change", "column"),
    [
        (
            "1m open/close swapped",
            lambda ev: isinstance(ev, BarEvent) and ev.bar.open != ev.bar.close,
            _swap_open_close,
            "sum_1m",
        ),
        (
            "derived 15m high doubled",
            lambda ev: isinstance(ev, DerivedBarEvent) and ev.bar.minutes == 15,
            _double_high,
            "sum_15m",
        ),
        (
            "derived 5m high doubled",
            lambda ev: isinstance(ev, DerivedBarEvent) and ev.bar.minutes == 5,
            _double_high,
            "sum_5m",
        ),
    ],
)
@pytest.mark.parametrize("buffered", [False, True], ids=["row_add", "buffered"])
def test_one_corrupted_delivered_bar_fails_the_comparison(
    compare: Any,
    buffered: bool,
    job_data: tuple[Any, Path, Path],
    tmp_path: Path,
    name: str,
    pick: Callable[[Any], bool],
    change: Callable[[Any], Any],
    column: str,
) -> None:
    tamper = _Once(pick, change, nth=100)
    cmp = _run_sessionflow(compare, job_data, tmp_path, tamper=tamper, buffered=buffered)
    assert tamper.done, f"{name}: no event was corrupted"
    assert not cmp["equal"], name
    assert cmp["columns_differ"] == {column: 1}, cmp
    # the old check compared only these columns: it would have printed "yes"
    assert not set(cmp["columns_differ"]) & OLD_COLUMNS


def test_job_has_empty_windows_and_short_last_windows(
    peers: Any, job_data: tuple[Any, Path, Path]
) -> None:
    """Item 2: the rules "no bar for an empty window" and "short last window kept"."""
    import numpy as np

    _, data, ref = job_data
    c = peers.read_columns(data)
    lengths = {s.minutes for s in c.sessions}
    assert lengths == {390, 210}
    # an interval whose last window is short on every session, the early close included
    assert any(all(n % m for n in lengths) for m in peers.INTERVALS)
    for m in peers.INTERVALS:
        empty = 0
        for code in range(len(c.names)):
            for s in c.sessions:
                mine = (c.code == code) & (c.ts_us >= s.open_us) & (c.ts_us < s.close_us)
                used = set(((c.ts_us[mine] - s.open_us) // (m * peers.MINUTE_US)).tolist())
                empty += -(-s.minutes // m) - len(used)
        assert empty > 0, f"no empty {m}m window in the job"
    # the reference counts exactly the non-empty windows, short last ones included
    rows = peers.read_csv(ref)
    col = peers.COLUMNS.index
    for m in peers.INTERVALS:
        total = sum(r[col(f"n_{m}m")] for r in rows.values())
        windows = 0
        for s in c.sessions:
            inside = (c.ts_us >= s.open_us) & (c.ts_us < s.close_us)
            window = (c.ts_us[inside] - s.open_us) // (m * peers.MINUTE_US)
            windows += len(np.unique(window * len(c.names) + c.code[inside]))
        assert total == windows


def test_window_builder_of_the_peer_variants_equals_the_reference(
    peers: Any, job_data: tuple[Any, Path, Path], tmp_path: Path
) -> None:
    """The consumer-side aggregation the backtrader/Nautilus variants use, fed the 1m bars
    in time order, delivers the reference's derived bars (short and empty windows too)."""
    _, data, ref = job_data
    c = peers.read_columns(data)
    rows: dict[tuple[str, str], Any] = {}
    builder = peers.WindowBuilder(c.sessions, rows)
    cols = (c.ts_us, c.open, c.high, c.low, c.close, c.volume)
    for code, *bar in zip(c.code.tolist(), *(x.tolist() for x in cols), strict=True):
        builder.add(c.names[code], *bar).add(1, *bar)
    builder.flush()
    out = tmp_path / "builder.csv"
    peers.write_csv(out, rows)
    cmp = peers.compare_csv(ref, out)
    assert cmp["equal"], cmp


def test_column_hashes_equal_python_tuple_hash() -> None:
    """The batch consumer's vectorised checksum is Python's ``hash(tuple)``, bar for bar."""
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        from peers.hashes import bar_hashes, float_hash, int_hash
    finally:
        sys.path.remove(str(BENCH))
    rng = np.random.default_rng(7)
    n = 20_000
    edge = [0.0, -0.0, 1.0, -1.0, 2.0**61 - 1, 2.0**70, -(2.0**61), 1e300, -1e-300, 5e-324]
    floats = np.concatenate([rng.normal(100, 50, n), rng.uniform(-1e9, 1e9, n), edge])
    mask = (1 << 64) - 1
    assert float_hash(floats).tolist() == [hash(x) & mask for x in floats.tolist()]
    edge_i = [0, -1, 1, -2, 2**61 - 1, 2**61, -(2**61), 2**63 - 1, -(2**63)]
    ints = np.concatenate([rng.integers(-(2**63), 2**63 - 1, n), edge_i]).astype(np.int64)
    assert int_hash(ints).tolist() == [hash(x) & mask for x in ints.tolist()]
    ts = rng.integers(1_700_000_000_000_000, 1_800_000_000_000_000, n)
    o, h, lo, c = rng.normal(100, 5, (4, n))
    v = rng.integers(0, 10**9, n)
    cols = [x.tolist() for x in (ts, o, h, lo, c, v)]
    want = [hash(t) & mask for t in zip(*cols, strict=True)]
    assert bar_hashes(ts, o, h, lo, c, v).tolist() == want


def _slice_high_doubled(ev: Any) -> Any:
    from dataclasses import replace

    bars = replace(ev.bars, high=ev.bars.high.copy())
    bars.high[len(bars) // 2] *= 2
    return replace(ev, bars=bars)


@pytest.mark.parametrize("corrupt", [False, True])
def test_vectorised_batch_consumer_equals_the_reference_and_catches_a_bad_bar(
    compare: Any,
    job_data: tuple[Any, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    corrupt: bool,
) -> None:
    """The columnar consumer (slices reduced once per session, hashed in chunks, here
    small ones) equals numpy; one doubled 1m high in one slice fails sum_1m and high."""
    from peers import engine_sessionflow

    from sessionflow.events import BarSliceEvent

    monkeypatch.setattr(engine_sessionflow._ColumnTally, "CHUNK", 100)
    tamper = _Once(lambda ev: isinstance(ev, BarSliceEvent), _slice_high_doubled, nth=50)
    cmp = _run_sessionflow(
        compare, job_data, tmp_path, batch=True, tamper=tamper if corrupt else None
    )
    if not corrupt:
        assert cmp["equal"], cmp
    else:
        assert tamper.done
        assert cmp["columns_differ"] == {"sum_1m": 1, "high": 1}, cmp


def test_numpy_reference_times_the_checksums_and_checks_them_against_row_add(
    peers: Any, job_data: tuple[Any, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference computes the consumers' checksums inside its timer (equal work);
    a wrong vectorised checksum fails its own cross-check against ``Row.add``."""
    import numpy as np
    from peers import engine_numpy

    job, data, _ = job_data
    res = engine_numpy.run(data, job)
    assert 0 < res.extra["replay_arrays_s"] <= res.replay_s

    real = engine_numpy._group_sums

    def off_by_one(starts: Any, cols: Any, *hashes_of: Any) -> Any:
        out = real(starts, cols, *hashes_of)
        out[0] += np.uint64(1)
        return out

    monkeypatch.setattr(engine_numpy, "_group_sums", off_by_one)
    with pytest.raises(AssertionError, match="disagrees with itself"):
        engine_numpy.run(data, job)


def test_compare_table_shows_both_numpy_ratios(compare: Any) -> None:
    common = {"status": "ok", "symbols": 5, "bars_1m": 100, "load_s": 0.1, "peak_rss_mb": 1}
    records = [
        {
            **common,
            "engine": "numpy",
            "bars_per_s": 1000,
            "replay_s": 0.1,
            "replay_arrays_s": 0.05,
            "loadavg_before": [1.0],
        },
        {
            **common,
            "engine": "sessionflow",
            "bars_per_s": 250,
            "replay_s": 0.4,
            "loadavg_before": [1.0],
            "compare": {"equal": True},
        },
    ]
    row = compare.table(records)[-1].split(" | ")
    assert row[7:9] == ["4.00x", "8.00x"]


class _Late:
    """Holds back the ``nth`` 1m bar event (or 1m slice) and hands it over with the next
    instant's events, its stamps unchanged: delivered a minute late. ``keep_time``: with
    its own (earlier) event time, as an engine that queued it by mistake would."""

    def __init__(self, nth: int, keep_time: bool) -> None:
        self.left, self.keep_time = nth, keep_time
        self.held: Any = None
        self.done = False

    def __call__(self, ev: Any) -> list[Any]:
        from dataclasses import replace

        from sessionflow.events import BarSliceEvent

        if self.held is not None and ev.time > self.held.time and not self.done:
            self.done = True
            late, held = self.held, self.held
            if not self.keep_time:
                late = (
                    held._replace(time=ev.time)
                    if isinstance(held, tuple)
                    else replace(held, time=ev.time)
                )
            return [ev, late]
        if self.held is None and isinstance(ev, BarEvent | BarSliceEvent):
            if self.left == 0:
                self.held = ev
                return []
            self.left -= 1
        return [ev]


def _volume_plus_one(ev: Any) -> Any:
    from dataclasses import replace

    from sessionflow.session_data import SessionReport

    rows = list(ev.report.rows)
    rows[0] = replace(rows[0], volume=rows[0].volume + 1)
    report = SessionReport(ev.report.session, ev.report.early_close, rows, ev.report.actions)
    return replace(ev, report=report)


def _full_length(ev: Any) -> Any:
    if hasattr(ev, "bars"):  # DerivedSliceEvent
        from dataclasses import replace

        return replace(ev, minutes=ev.interval)
    return ev._replace(bar=ev.bar._replace(minutes=ev.interval))


def _short(ev: Any) -> bool:
    return getattr(ev, "interval", 0) == 8 and (
        ev.minutes < 8 if hasattr(ev, "bars") else ev.bar.minutes < 8
    )


@pytest.mark.parametrize("kind", ["per_bar", "batch", "buffered"])
@pytest.mark.parametrize(
    ("plant", "failed"),
    [
        ("late 1m bar, next instant's time", {"time:at_1m": 1}),
        ("late 1m bar, own time", {"order_errors": 1}),
        ("session volume + 1 in the engine's report", {"figures:volume": 1}),
        ("short last 8m window labelled 8 minutes", {"time:at_8m": 1}),
    ],
)
def test_each_bug_the_old_check_missed_fails_the_run(
    compare: Any,
    job_data: tuple[Any, Path, Path],
    tmp_path: Path,
    kind: str,
    plant: str,
    failed: dict[str, int],
) -> None:
    """Issue 23, item 4: the three bugs the values alone let through, each planted once."""
    from sessionflow.events import DerivedSliceEvent, SessionEndEvent

    if plant.startswith("late"):  # per bar the 200th bar; batch the 200th instant's slice
        tamper: Any = _Late(200, keep_time=plant.endswith("own time"))
    elif plant.startswith("session"):
        tamper = _Once(lambda ev: isinstance(ev, SessionEndEvent), _volume_plus_one, nth=1)
    else:
        pick = (DerivedSliceEvent, DerivedBarEvent)
        tamper = _Once(lambda ev: isinstance(ev, pick) and _short(ev), _full_length, nth=3)
    flags = {"batch": kind == "batch", "buffered": kind == "buffered"}
    cmp = _run_sessionflow(compare, job_data, tmp_path, tamper=tamper, **flags)
    assert tamper.done, plant
    assert not cmp["equal"], plant
    got = cmp["columns_differ"]
    if kind == "batch" and not plant.startswith("session"):  # every symbol's bar in the slice
        got = {k: min(v, 1) for k, v in got.items()}
    assert got == failed, (plant, cmp)
    # the values alone (the check before issue 23) said yes to every one of them
    assert cmp["values"]["equal"], plant


def test_noop_rows_compare_the_engines_figures(
    compare: Any, job_data: tuple[Any, Path, Path], tmp_path: Path
) -> None:
    for batch in (False, True):
        cmp = _run_sessionflow(compare, job_data, tmp_path, batch=batch, noop=True)
        assert cmp["equal"] and cmp["values"] is None and cmp["time"] is None, cmp
        assert cmp["figures"]["equal"] and cmp["figures"]["rows"] == 3 * 5
