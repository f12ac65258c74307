"""``read_bars``/``iter_bars`` and the ``to_pandas``/``to_polars`` of the engine's objects.

The frames must hold exactly the bars a backtest delivers: compared here with the
engine's own bars (``DataManager.bars`` and ``history`` at a session's end) over a
split, an early close and k-minute windows whose session open is off the clock grid
(14:30 UTC is on no 7- or 60-minute grid), and with an independent pandas groupby.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sessionflow
from sessionflow import Event, SessionEndEvent, Settings, SystemManager
from sessionflow.corporate_actions import Action
from sessionflow.frames import FrameBackendError, ReadError, iter_bars, read_bars
from sessionflow.models import to_us
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import run_collect

SYMBOLS = ["AAPL", "NVDA"]  # NVDA misses about 3% of its minutes in the demo data
FIRST, LAST = date(2024, 11, 25), date(2024, 12, 3)  # 11-28 holiday, 11-29 early close
SPLIT = Action("AAPL", date(2024, 11, 29), split=2.0)  # 2-for-1, ex the early close
INTERVALS = (1, 7, 60)

Row = tuple[str, int, float, float, float, float, int, int]


@pytest.fixture(scope="module")
def split_store(demo_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo store with a 2-for-1 split of AAPL ex 2024-11-29."""
    path = tmp_path_factory.mktemp("frames") / "split.duckdb"
    shutil.copyfile(demo_store_path, path)
    store = DuckDBStore(path)
    store.write_actions([SPLIT], [])
    store.close()
    return path


def _rows(bars: Any) -> list[Row]:
    return [(b.symbol, to_us(b.ts), b.open, b.high, b.low, b.close, b.volume, b.minutes)
            for b in bars]  # fmt: skip


def _frame_rows(df: pd.DataFrame) -> list[Row]:
    cols = ["symbol", "timestamp", "open", "high", "low", "close", "volume", "minutes"]
    out = df[cols].copy()
    out["timestamp"] = out["timestamp"].astype("int64")  # microseconds: the frame's unit
    return [tuple(r) for r in out.itertuples(index=False, name=None)]  # type: ignore[misc]


@pytest.fixture(scope="module")
def engine_bars(split_store: Path) -> dict[int, list[Row]]:
    """What a one-session backtest of LAST holds at its end, per interval: the trailing
    sessions' history (adjusted as of LAST) and LAST's own bars, by (symbol, time)."""
    held: dict[int, list[Row]] = {k: [] for k in INTERVALS}

    def probe(system: SystemManager, ev: Event) -> None:
        if not isinstance(ev, SessionEndEvent):
            return
        dm = system.data_manager
        for k in INTERVALS:
            for day in sorted(dm.session_data.history.get(k, {})):
                for s in SYMBOLS:
                    held[k] += _rows(dm.history(s, k, day))
            for s in SYMBOLS:
                held[k] += _rows(dm.bars(s, k))

    settings = Settings(
        store_path=split_store, symbols=SYMBOLS, start=LAST, end=LAST, trailing_days=5,
        derived_intervals=[7, 60], historical_intervals=list(INTERVALS), adjustment="split",
    )  # fmt: skip
    system, _ = run_collect(settings, on_event=probe)
    system.store.close()
    return {k: sorted(rows, key=lambda r: (r[1], r[0])) for k, rows in held.items()}


@pytest.mark.parametrize("interval", INTERVALS)
def test_read_bars_equals_the_engines_bars(
    split_store: Path, engine_bars: dict[int, list[Row]], interval: int
) -> None:
    df = read_bars(split_store, SYMBOLS, FIRST, LAST, f"{interval}m")
    assert str(df["timestamp"].dt.tz) == "UTC"
    want = engine_bars[interval]
    assert len({r[1] // 86_400_000_000 for r in want}) == 6  # five trailing days + LAST
    assert _frame_rows(df) == want
    early = df[df["timestamp"].dt.date == date(2024, 11, 29)]
    assert not early.empty and early["timestamp"].max() < pd.Timestamp("2024-11-29T18:00Z")


def test_the_split_is_applied_as_of_the_last_session_only_before_its_ex_date(
    split_store: Path,
) -> None:
    adj = read_bars(split_store, "AAPL", FIRST, LAST, "5m")
    raw = read_bars(split_store, "AAPL", FIRST, LAST, "5m", adjustment="raw")
    before = adj["timestamp"] < pd.Timestamp("2024-11-29T00:00Z")
    assert before.any() and (~before).any()
    assert np.array_equal(adj["close"][before], raw["close"][before] / 2)
    assert np.array_equal(adj["volume"][before], raw["volume"][before] * 2)
    assert adj[~before].equals(raw[~before])
    # as of the day before the ex-date nothing is adjusted: no look-ahead
    early = read_bars(split_store, "AAPL", FIRST, LAST, "5m", as_of=date(2024, 11, 27))
    assert early.equals(raw)


@pytest.mark.parametrize("interval", [7, 60])
def test_windows_are_aligned_to_the_open_as_an_independent_groupby_says(
    split_store: Path, calendar: ExchangeCalendar, interval: int
) -> None:
    """k-minute bars equal pandas' own reduction of the 1m frame over windows counted
    from each session's open; the last window of a session k does not divide is short."""
    one = read_bars(split_store, SYMBOLS, FIRST, LAST, "1m")
    got = read_bars(split_store, SYMBOLS, FIRST, LAST, interval)
    opens = {s.date: pd.Timestamp(s.open) for s in calendar.sessions(FIRST, LAST)}
    closes = {s.date: pd.Timestamp(s.close) for s in calendar.sessions(FIRST, LAST)}
    day = one["timestamp"].dt.date
    start = day.map(opens)
    window = (one["timestamp"] - start) // pd.Timedelta(minutes=interval)
    one = one.assign(day=day, ts=start + window * pd.Timedelta(minutes=interval))
    want = (
        one.groupby(["ts", "symbol"], sort=True)
        .agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
             close=("close", "last"), volume=("volume", "sum"), day=("day", "first"))
        .reset_index()
    )  # fmt: skip
    end = want["day"].map(closes)
    left = (end - want["ts"]) // pd.Timedelta(minutes=1)
    want["minutes"] = left.clip(upper=interval).astype("int64")
    cols = ["ts", "symbol", "open", "high", "low", "close", "volume", "minutes"]
    expected = want[cols].rename(columns={"ts": "timestamp"})
    actual = got[["timestamp", "symbol", "open", "high", "low", "close", "volume", "minutes"]]
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected, check_dtype=False)
    assert (got["timestamp"].dt.minute == 30).any()  # windows start at :30, the open


def test_polars_and_pandas_hold_the_same_bars(split_store: Path) -> None:
    pdf = read_bars(split_store, SYMBOLS, FIRST, LAST, "15m")
    plf = read_bars(split_store, SYMBOLS, FIRST, LAST, "15m", backend="polars")
    assert isinstance(plf, pl.DataFrame)
    assert plf.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert plf.to_pandas().equals(pdf)


def test_iter_bars_yields_one_frame_per_session_that_concatenate_to_read_bars(
    split_store: Path,
) -> None:
    frames = list(iter_bars(split_store, SYMBOLS, FIRST, LAST, "5m"))
    assert len(frames) == 6
    assert all(f["timestamp"].dt.date.nunique() == 1 for f in frames)
    whole = read_bars(split_store, SYMBOLS, FIRST, LAST, "5m")
    assert pd.concat(frames, ignore_index=True).equals(whole)


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"symbols": ["ZZZZ"]}, ReadError, "ZZZZ"),
        ({"start": "2024-11-28", "end": "2024-11-28"}, ReadError, "no XNYS sessions"),
        ({"interval": "5x"}, ValueError, "--interval"),
        ({"adjustment": "total"}, ValueError, "adjustment"),
        ({"backend": "spark"}, FrameBackendError, "use pandas or polars"),
    ],
)
def test_bad_arguments_raise_at_the_call_with_one_line(
    split_store: Path, kwargs: dict[str, Any], error: type[Exception], needle: str
) -> None:
    args: dict[str, Any] = {"symbols": SYMBOLS, "start": FIRST, "end": LAST, **kwargs}
    with pytest.raises(error) as caught:
        iter_bars(split_store, **args)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_the_package_exports_read_bars_and_imports_no_polars() -> None:
    import subprocess
    import sys

    code = "import sys, sessionflow.cli.app, sessionflow; print('polars' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
    assert sessionflow.read_bars is read_bars


def _peak_bytes(consume: Any) -> int:
    """Peak bytes held while ``consume()`` runs: Python/numpy (tracemalloc) plus Arrow's
    own allocations (a fresh proxy pool made the default for the call)."""
    import tracemalloc

    import pyarrow as pa

    before = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(before)
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        consume()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(before)
    return int(peak + pool.max_memory())


def test_iter_bars_holds_one_session_not_the_range(tmp_path: Path) -> None:
    """Peak memory over 19 sessions is about that over 2: bounded by a session's bars,
    while the 19 sessions' frames together are several times larger."""
    from sessionflow.testing.generated_store import generate_store

    path = tmp_path / "gen.duckdb"
    generate_store(path, 40, date(2024, 11, 25), date(2024, 12, 20), ExchangeCalendar("XNYS"))
    store = DuckDBStore(path, read_only=True)
    sizes: list[int] = []

    def consume(end: date) -> None:
        for frame in iter_bars(store, None, date(2024, 11, 25), end, "1m", backend="polars"):
            sizes.append(int(frame.estimated_size()))

    consume(date(2024, 11, 26))  # warm: DuckDB's and the calendar's first-use allocations
    two = _peak_bytes(lambda: consume(date(2024, 11, 26)))
    sizes.clear()
    many = _peak_bytes(lambda: consume(date(2024, 12, 20)))
    store.close()
    assert len(sizes) == 19
    assert many < 1.5 * two, (two, many)
    assert 2 * many < sum(sizes), (many, sizes)


def test_reading_by_path_caps_duckdbs_cache_for_the_read(split_store: Path) -> None:
    """A scan by session kept every decompressed block cached up to 80% of RAM (a year
    of 500 symbols passed 1 GB): a store ``iter_bars`` opens itself gets a capped cache
    while it reads, and the limit is put back after (the database is shared by every
    connection to the file in this process)."""
    import duckdb

    from sessionflow.export.bars import CACHE_BASE_MB

    con = duckdb.connect(str(split_store), read_only=True)

    def limit() -> tuple[float, str]:
        number, unit = str(
            con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        ).split()
        return float(number), unit

    before = limit()
    frames = iter_bars(split_store, SYMBOLS, FIRST, LAST)
    next(frames)  # the reader's store joins the database ``con`` holds open
    number, unit = limit()
    assert unit == "MiB" and CACHE_BASE_MB * 0.9 < number < 2 * CACHE_BASE_MB, (number, unit)
    frames.close()
    after = limit()
    con.close()
    # DuckDB shows the limit to three figures: the text put back may differ by that rounding
    assert after[1] == before[1] and abs(after[0] - before[0]) <= 0.15, (before, after)
