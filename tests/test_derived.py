"""Derived bars equal an independent pandas resample aligned to the session open."""

from datetime import date

import pandas as pd
import pytest

from sessionflow.data_upkeep import derive_bars
from sessionflow.demo import synthetic_bars
from sessionflow.time_provider import ExchangeCalendar


def pandas_resample(frame: pd.DataFrame, minutes: int, origin: pd.Timestamp) -> pd.DataFrame:
    agg = frame.resample(f"{minutes}min", origin=origin, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return agg.dropna(subset=["open"])


@pytest.mark.parametrize("day", [date(2024, 11, 27), date(2024, 11, 29)])
@pytest.mark.parametrize("interval", [5, 15, 60])
def test_derived_matches_pandas(calendar: ExchangeCalendar, day: date, interval: int) -> None:
    session = calendar.session(day)
    batch = synthetic_bars(calendar, ["ZZZ"], day, day, missing={"ZZZ": 0.2}, seed=7)
    bars = list(batch.iter_bars())
    frame = pd.DataFrame(
        {
            "open": batch.open,
            "high": batch.high,
            "low": batch.low,
            "close": batch.close,
            "volume": batch.volume,
        },
        index=pd.to_datetime(batch.ts_us, unit="us", utc=True),
    )
    expected = pandas_resample(frame, interval, pd.Timestamp(session.open))
    got = derive_bars(bars, session, interval)
    assert [b.ts for b in got] == [t.to_pydatetime() for t in expected.index]
    for bar, (_, row) in zip(got, expected.iterrows(), strict=True):
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            row.open,
            row.high,
            row.low,
            row.close,
            int(row.volume),
        )
    last = got[-1]
    assert last.ts + last.minutes * pd.Timedelta(minutes=1) <= session.close


def test_last_window_of_an_early_close_is_kept_and_short(calendar: ExchangeCalendar) -> None:
    session = calendar.session(date(2024, 11, 29))  # 210 minutes
    bars = list(synthetic_bars(calendar, ["ZZZ"], session.date, session.date).iter_bars())
    hourly = derive_bars(bars, session, 60)
    assert len(hourly) == 4
    assert [b.minutes for b in hourly] == [60, 60, 60, 30]
    assert sum(b.volume for b in hourly) == sum(b.volume for b in bars)
