"""Property-based tests (hypothesis, derandomized): CSV import and derived-bar aggregation.

Import: random files of valid and invalid rows, in every time-zone notation. The
expected outcome of each row is worked out here from how the row was *made* (which
defect it carries, which instant it names), using the documented rule order; the
importer must agree row by row and the store must hold exactly the good rows.

Aggregation: random presence patterns on a full and an early-close session; the
object path (``derive_bars``) and the columnar path (``derive_grid``/``window``)
must agree, and both must satisfy the bar invariants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionflow.data_upkeep import derive_bars
from sessionflow.importer import bar_job, run_import
from sessionflow.importer.validate import REASONS
from sessionflow.models import MINUTE, Bar, to_us
from sessionflow.session_data.grid import BarGrid, derive_grid, window
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar

PROFILE = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FRIDAY = date(2024, 11, 29)  # early close: 09:30-13:00 ET, 210 minutes
HOLIDAY = date(2024, 11, 28)
FRIDAY_OPEN = datetime(2024, 11, 29, 14, 30, tzinfo=UTC)
KINDS = ("good",) * 6 + (
    "nan", "inf", "high_below_low", "high_below_open_close", "low_above_open_close",
    "negative_volume", "not_minute_aligned", "malformed_row", "bad_number", "unparsable_time",
)  # fmt: skip
NOTATIONS = ("offset", "utc_z", "utc", "naive")


Values = tuple[float, float, float, float, int]


def block_reduction(
    src: BarGrid, k: int, slots: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Reference: windows ``slots`` reduced at once with numpy over a [window,
    minute-in-window, row] view, by the presence mask (not the empty slots' values).
    Returns (any_present, open, high, low, close, volume), each [windows, rows]."""
    n = src.n_slots
    minute = slots[:, None] * k + np.arange(k)[None, :]
    inside = minute < n
    minute = np.minimum(minute, n - 1)

    def block(a: np.ndarray) -> np.ndarray:
        b: np.ndarray = a[minute]
        return b if rows is None else b[:, :, rows]

    p = block(src.present) & inside[:, :, None]
    has = np.any(p, axis=1)
    first = p.argmax(axis=1)[:, None, :]
    last = (k - 1 - p[:, ::-1].argmax(axis=1))[:, None, :]
    o = np.where(has, np.take_along_axis(block(src.open), first, axis=1)[:, 0], np.nan)
    c = np.where(has, np.take_along_axis(block(src.close), last, axis=1)[:, 0], np.nan)
    h = np.where(p, block(src.high), -np.inf).max(axis=1)
    lo = np.where(p, block(src.low), np.inf).min(axis=1)
    h[~has], lo[~has] = np.nan, np.nan
    v = np.where(p, block(src.volume), 0).sum(axis=1)
    return has, o, h, lo, c, v


@dataclass(frozen=True)
class Row:
    symbol: str
    day: date
    minute: int  # session minute; < 0 before the open, >= 210 after the close
    kind: str
    notation: str
    cents: int
    volume: int

    @property
    def ts(self) -> datetime:
        base = datetime.combine(self.day, datetime.min.time(), UTC) + timedelta(
            hours=14, minutes=30
        )
        return (
            base
            + self.minute * MINUTE
            + timedelta(seconds=30 * (self.kind == "not_minute_aligned"))
        )

    def text(self) -> str:
        ts = self.ts
        when = {
            "offset": ts.astimezone(_ET).isoformat(),
            "utc_z": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "utc": ts.isoformat(),
            "naive": ts.astimezone(_ET).replace(tzinfo=None).isoformat(sep=" "),
        }[self.notation]
        p = self.cents / 100
        o, h, lo, c, v = p, p + 1, p - 0.5, p + 0.25, float(self.volume)
        k = self.kind
        if k == "nan":
            o = float("nan")
        elif k == "inf":
            h = float("inf")
        elif k == "high_below_low":
            h = lo - 0.01
        elif k == "high_below_open_close":
            o = h + 0.5
        elif k == "low_above_open_close":
            c = lo - 0.25
        elif k == "negative_volume":
            v = -v - 1
        fields = [self.symbol, when, repr(o), repr(h), repr(lo), repr(c), str(int(v))]
        if k == "malformed_row":
            fields = fields[:-1]
        elif k == "bad_number":
            fields[3] = "n/a"
        elif k == "unparsable_time":
            fields[1] = "29/11/2024 09:30"
        return ",".join(fields)

    def values(self) -> Values:
        p = self.cents / 100
        return p, p + 1, p - 0.5, p + 0.25, self.volume


_ET = ExchangeCalendar("XNYS").tz

rows_strategy = st.lists(
    st.builds(
        Row,
        symbol=st.sampled_from(["AAA", "BBB"]),
        day=st.sampled_from([FRIDAY] * 5 + [HOLIDAY]),
        minute=st.integers(-3, 213),
        kind=st.sampled_from(KINDS),
        notation=st.sampled_from(NOTATIONS),
        cents=st.integers(100, 100_000),
        volume=st.integers(0, 10**7),
    ),
    min_size=1,
    max_size=40,
)


def expected_outcome(
    rows: list[Row],
) -> tuple[list[tuple[int, str]], dict[tuple[str, int], Values]]:
    """Each row's fate by the documented order: shape, time, numbers, prices, minute,
    session, then duplicate and order against the rows accepted so far."""
    rejected: list[tuple[int, str]] = []
    kept: dict[tuple[str, int], Values] = {}
    last: dict[str, int] = {}
    price = {"nan": "nan_or_inf", "inf": "nan_or_inf"}
    for line, row in enumerate(rows, start=2):
        k = row.kind
        if k in ("malformed_row", "unparsable_time", "bad_number", "not_minute_aligned"):
            rejected.append((line, k))
            continue
        if k != "good":
            rejected.append((line, price.get(k, k)))
            continue
        us = to_us(row.ts)
        if row.day != FRIDAY or not 0 <= row.minute < 210:
            rejected.append((line, "outside_session"))
        elif (row.symbol, us) in kept:
            rejected.append((line, "duplicate"))
        elif us < last.get(row.symbol, us):
            rejected.append((line, "out_of_order"))
        else:
            kept[(row.symbol, us)] = row.values()
            last[row.symbol] = us
    return rejected, kept


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("props")


@settings(PROFILE, max_examples=40)
@given(rows=rows_strategy)
def test_import_accounts_for_every_row_and_stores_exactly_the_good_ones(
    rows: list[Row], workdir: Path, calendar: ExchangeCalendar
) -> None:
    path = workdir / "rows.csv"
    path.write_text(
        "symbol,timestamp,open,high,low,close,volume\n" + "\n".join(r.text() for r in rows) + "\n"
    )
    store = DuckDBStore(":memory:")
    result = run_import(store, [bar_job(path, calendar, tz=calendar.tz)])
    report = result.reports[0]
    want_rejected, want_kept = expected_outcome(rows)
    # a file with no importable row fails the import and writes nothing (docs/cli.md)
    assert result.committed == bool(want_kept)
    assert (report.error is None) == bool(want_kept)

    assert report.rows == len(rows)
    assert report.imported + sum(report.rejected.values()) == len(rows)
    assert all(reason in REASONS and detail for _, reason, detail in report.rejections)
    assert [(line, reason) for line, reason, _ in report.rejections] == want_rejected
    day = (FRIDAY_OPEN - timedelta(days=2), FRIDAY_OPEN + timedelta(days=2))
    got = store.load_bars(["AAA", "BBB"], *day, regular_only=False)
    stored = {
        (str(s), int(t)): (o, h, lo, c, int(v))
        for s, t, o, h, lo, c, v in zip(got.symbol, got.ts_us, got.open, got.high, got.low,
                                        got.close, got.volume, strict=True)
    }  # fmt: skip
    assert stored == want_kept
    store.close()


def as_tuple(b: Bar) -> tuple[object, ...]:
    return (b.ts, b.minutes, b.open, b.high, b.low, b.close, b.volume)


def _grid(names: list[str], bars: dict[str, list[Bar]], minutes: int, open_us: int) -> BarGrid:
    grid = BarGrid.empty(len(names), minutes, open_us, 1, 1)
    for row, name in enumerate(names):
        b = bars[name]
        slots = np.array([(to_us(x.ts) - open_us) // 60_000_000 for x in b], dtype=np.intp)
        rows = np.full(len(b), row, dtype=np.intp)
        cols = [np.array([getattr(x, f) for x in b]) for f in ("open", "high", "low", "close")]
        grid.put(rows, slots, *cols, np.array([x.volume for x in b], dtype=np.int64))
    return grid


@st.composite
def sessions_and_bars(draw: st.DrawFn) -> tuple[date, int, dict[str, list[int]], int]:
    day = draw(st.sampled_from([date(2024, 11, 27), FRIDAY]))
    minutes = 390 if day != FRIDAY else 210
    k = draw(st.sampled_from([1, 2, 5, 7, 15, 30, 60, 89, 390]))
    present: dict[str, list[int]] = {}
    for name in ("AAA", "BBB"):
        sparse = draw(st.booleans())
        picked = draw(st.sets(st.integers(0, minutes - 1), max_size=60))
        keep = picked if sparse else set(range(minutes)) - picked
        present[name] = sorted(keep)
    return day, k, present, draw(st.integers(0, 2**32 - 1))


@settings(PROFILE, max_examples=60)
@given(case=sessions_and_bars())
def test_derived_bars_object_and_columnar_paths_agree_and_hold_the_invariants(
    case: tuple[date, int, dict[str, list[int]], int], calendar: ExchangeCalendar
) -> None:
    day, k, present, seed = case
    session = calendar.session(day)
    rng = np.random.default_rng(seed)
    bars: dict[str, list[Bar]] = {}
    for name, slots in present.items():
        close = np.round(50 + rng.normal(0, 1, len(slots)).cumsum(), 2)
        open_ = np.round(close + rng.normal(0, 0.1, len(slots)), 2)
        high = np.maximum(open_, close) + np.round(rng.random(len(slots)), 2)
        low = np.minimum(open_, close) - np.round(rng.random(len(slots)), 2)
        vol = rng.integers(0, 10_000, len(slots))
        bars[name] = [
            Bar(name, session.open + m * MINUTE, float(o), float(h), float(lo), float(c), int(v))
            for m, o, h, lo, c, v in zip(slots, open_, high, low, close, vol, strict=True)
        ]
    names = sorted(bars)
    grid = _grid(names, bars, session.minutes, to_us(session.open))
    derived_grid = derive_grid(grid, k)
    n_win = -(-session.minutes // k)
    has, o, h, lo, c, v = block_reduction(grid, k, np.arange(n_win))

    for row, name in enumerate(names):
        objects = derive_bars(bars[name], session, k)
        columnar = derived_grid.bars(row, name)
        assert [as_tuple(b) for b in objects] == [as_tuple(b) for b in columnar]
        assert has[:, row].sum() == len(objects)
        for j in np.flatnonzero(has[:, row]).tolist():
            d = objects[int(has[: j + 1, row].sum()) - 1]
            assert (d.open, d.high, d.low, d.close, d.volume) == (
                o[j, row], h[j, row], lo[j, row], c[j, row], v[j, row]
            )  # fmt: skip

        assert sum(b.volume for b in objects) == sum(b.volume for b in bars[name])
        windows = {j: [b for b in bars[name] if (b.ts - session.open) // (k * MINUTE) == j]
                   for j in range(n_win)}  # fmt: skip
        assert len(objects) == sum(1 for parts in windows.values() if parts)
        for d in objects:
            j, offset = divmod(d.ts - session.open, k * MINUTE)
            assert offset == timedelta(0)  # aligned to the open, k-minute steps
            parts = windows[j]
            assert d.minutes == min(k, session.minutes - j * k)
            assert d.open == parts[0].open and d.close == parts[-1].close
            assert all(d.high >= p.high and d.low <= p.low for p in parts)
            assert d.high == max(p.high for p in parts) and d.low == min(p.low for p in parts)
            assert d.volume == sum(p.volume for p in parts)
            assert d.ts + d.minutes * MINUTE <= session.close
        if objects and session.minutes % k:  # e.g. 60-minute bars on the 210-minute day
            lengths = {d.minutes for d in objects}
            assert lengths <= {k, session.minutes % k}


def test_the_early_close_keeps_a_short_last_window(calendar: ExchangeCalendar) -> None:
    """The one fixed example the property above must include: 60-minute bars on 11-29."""
    session = calendar.session(FRIDAY)
    bars = [Bar("A", session.open + m * MINUTE, 1, 2, 0.5, 1, 1) for m in range(210)]
    hourly = derive_bars(bars, session, 60)
    assert [b.minutes for b in hourly] == [60, 60, 60, 30]
    grid = derive_grid(_grid(["A"], {"A": bars}, 210, to_us(session.open)), 60)
    assert [b.minutes for b in grid.bars(0, "A")] == [60, 60, 60, 30]
    assert sum(b.volume for b in hourly) == 210


@st.composite
def window_masks(draw: st.DrawFn) -> tuple[int, int, np.ndarray, np.ndarray, int]:
    """A short 1m grid (minutes x symbols) with a presence mask that leaves out any
    minutes, including a window's first or last minute and whole symbols."""
    n_sym = draw(st.integers(1, 12))
    k = draw(st.sampled_from([1, 2, 5, 8, 15]))
    minutes = draw(st.integers(1, 3 * k + 2))
    cells = draw(st.lists(st.booleans(), min_size=minutes * n_sym, max_size=minutes * n_sym))
    mask = np.array(cells, dtype=np.bool_).reshape(minutes, n_sym)
    rows = np.array(sorted(draw(st.sets(st.integers(0, n_sym - 1), min_size=1))), dtype=np.intp)
    return k, minutes, mask, rows, draw(st.integers(0, 2**32 - 1))


@settings(PROFILE, max_examples=150)
@given(case=window_masks())
def test_the_one_window_path_is_bit_identical_to_the_block_reduction(
    case: tuple[int, int, np.ndarray, np.ndarray, int],
) -> None:
    """The upkeep check's per-window path (first/last minute plus a search over the
    symbols missing there) against the all-windows reduction, every array byte for
    byte (NaN where no minute is present), for all symbols and for a subset of rows."""
    k, minutes, mask, rows, seed = case
    rng = np.random.default_rng(seed)
    grid = BarGrid.empty(mask.shape[1], minutes, 0, 1, 1)
    at = np.nonzero(mask)
    n = len(at[0])
    prices = [np.round(rng.uniform(1, 100, n), 2) for _ in range(4)]
    grid.put(at[1].astype(np.intp), at[0].astype(np.intp), *prices, rng.integers(0, 10**6, n))
    n_win = -(-minutes // k)
    for sel in (None, rows):
        block = block_reduction(grid, k, np.arange(n_win), sel)
        for j in range(n_win):
            one = window(grid, k, j, sel)  # the compiled pass
            for got, want in zip(one, block, strict=True):
                assert got.dtype == want.dtype and got.shape == want[j].shape
                assert got.tobytes() == want[j].tobytes()
