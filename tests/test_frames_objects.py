"""``to_pandas``/``to_polars`` of what a strategy holds: bars, history, snapshots, the
session report and the backtest's results (orders, fills, equity)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import polars as pl
import pytest

from sessionflow import Context, SessionReport, Settings, read_bars, run_backtest
from sessionflow.frames.objects import RESULT_TABLES, Bars, bars_table
from sessionflow.results.writers import tables
from tests.strategies import Crossover

DAY = date(2024, 12, 2)


class Probe(Crossover):
    """The crossover, keeping at each session's end what the frames are made from."""

    seen: ClassVar[dict[str, Any]] = {}

    def on_session_end(self, ctx: Context, report: SessionReport) -> None:
        held = sorted(ctx.data.session_data.history.get(5, {}))
        Probe.seen.update(
            bars=ctx.data.bars("NVDA", 5),
            history=ctx.data.history("NVDA", 5, held[-1]),
            history_day=held[-1],
            snapshot=ctx.data.snapshot("NVDA"),
            report=report,
        )


@pytest.fixture(scope="module")
def run(demo_store_path: Path) -> Any:
    settings = Settings(
        store_path=demo_store_path, symbols=["AAPL", "NVDA"], start=DAY, end=DAY,
        trailing_days=1, derived_intervals=[5], historical_intervals=[1, 5],
    )  # fmt: skip
    result = run_backtest(settings, Probe)
    return result, dict(Probe.seen)


def test_bars_and_history_are_tuples_that_become_the_read_bars_frame(
    run: Any, demo_store_path: Path
) -> None:
    _, seen = run
    bars, history = seen["bars"], seen["history"]
    assert isinstance(bars, Bars) and bars == tuple(bars) and len(bars) > 70
    df = bars.to_pandas()
    assert not df["filled"].any()
    want = read_bars(demo_store_path, "NVDA", DAY, DAY, "5m", adjustment="raw")
    assert df.drop(columns="filled").equals(want)
    prior = read_bars(demo_store_path, "NVDA", seen["history_day"], seen["history_day"], "5m")
    assert history.to_pandas().drop(columns="filled").equals(prior)
    assert history.to_polars().to_pandas().equals(history.to_pandas())


def test_snapshot_frames_are_its_bars(run: Any) -> None:
    _, seen = run
    snap = seen["snapshot"]
    assert snap.to_pandas(5).equals(seen["bars"].to_pandas())
    assert len(snap.to_pandas()) == len(snap.bars_1m) > 350
    assert snap.to_polars(5, seen["history_day"]).to_pandas().equals(seen["history"].to_pandas())
    assert bars_table(()).num_rows == 0 and list(Bars().to_pandas().columns)[:2] == [
        "symbol",
        "timestamp",
    ]


def test_report_frame_has_one_row_per_symbol_with_its_figures(run: Any) -> None:
    _, seen = run
    report = seen["report"]
    df = report.to_pandas()
    assert df["symbol"].tolist() == ["AAPL", "NVDA"]
    for row, r in zip(df.itertuples(), report.rows, strict=True):
        assert (row.bars, row.expected, row.volume, row.quality) == (
            r.bars, r.expected, r.volume, r.quality,
        )  # fmt: skip
    assert df["bars"].iloc[1] < 390  # NVDA misses minutes in the demo data
    assert isinstance(report.to_polars(), pl.DataFrame)


@pytest.mark.parametrize("name", RESULT_TABLES)
def test_result_tables_match_what_output_writes_with_times_as_timestamps(
    run: Any, name: str
) -> None:
    result, _ = run
    df = result.to_pandas(name)
    assert len(df) > 0, name
    polars = result.to_polars(name)
    assert polars.columns == list(df.columns) and polars.height == len(df)
    if name == "daily":
        assert df["session"].tolist() == [DAY] and df["equity"].iloc[0] == result.final_equity
        return
    times = {"orders": ["submitted_at", "updated_at"], "fills": ["time"],
             "trades": ["opened", "closed"], "equity": ["time"]}.get(name, [])  # fmt: skip
    for col in times:
        assert str(df[col].dtype).startswith("datetime64") and str(df[col].dt.tz) == "UTC", col
    written = tables(result)[name]
    assert list(df.columns) == list(written.columns)
    for col in df.columns:
        if isinstance(df[col].dtype, pd.DatetimeTZDtype):
            iso = [None if pd.isna(t) else t.isoformat() for t in df[col]]
            assert iso == [None if pd.isna(t) else t for t in written[col]], (name, col)
        else:
            assert df[col].tolist() == written[col].tolist(), (name, col)


def test_an_unknown_result_table_is_named(run: Any) -> None:
    result, _ = run
    with pytest.raises(ValueError, match="table 'pnl': use one of orders, fills"):
        result.to_pandas("pnl")
