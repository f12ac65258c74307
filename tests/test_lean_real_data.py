"""Real LEAN minute data end to end: import, replay, report, each number re-derived with pandas.

The expected values are computed here straight from the zipped CSVs (pandas, tz_localize
for local time), never through sessionflow's importer, so a conversion or session-boundary
bug shows up as a mismatch rather than being shared by both sides.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from typer.testing import CliRunner

from sessionflow import (
    Bar,
    BarEvent,
    DerivedBarEvent,
    Event,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
    Settings,
    build_system,
)
from sessionflow.cli.app import app
from sessionflow.cli.report_cmd import report_rows
from sessionflow.importer import ImportError_, import_lean
from sessionflow.importer.lean import LeanFile, local_ms_to_us, read_lean_file
from sessionflow.session_data import SessionReport, SymbolReport, SymbolSnapshot
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.time_provider import ExchangeCalendar, SessionInfo
from tests.helpers import SHARED_DATA, shared_data

LEAN = SHARED_DATA / "lean-minute"
TZ = "America/New_York"
TRADE = ["ms", "open", "high", "low", "close", "volume"]
QUOTE = ["ms", "bid_open", "bid_high", "bid_low", "bid_close", "bid_size",
         "ask_open", "ask_high", "ask_low", "ask_close", "ask_size"]  # fmt: skip
OCT = [date(2013, 10, d) for d in (4, 7, 8, 9, 10, 11)]
SHY_DAYS = [date(2008, 3, 7), date(2008, 3, 10)]
INTERVALS = (5, 15)


@pytest.fixture(scope="session")
def lean_dir() -> Path:
    return shared_data("lean-minute")


@pytest.fixture(scope="session")
def xnys() -> ExchangeCalendar:
    return ExchangeCalendar("XNYS")


@pytest.fixture(scope="module")
def store_path(
    lean_dir: Path, tmp_path_factory: pytest.TempPathFactory, xnys: ExchangeCalendar
) -> Path:
    path = tmp_path_factory.mktemp("lean") / "lean.duckdb"
    store = DuckDBStore(path)
    try:
        import_lean(store, lean_dir, xnys)
    finally:
        store.close()
    return path


# --- independent expectations from the raw files -------------------------------------------


def raw(kind: str, symbol: str, day: date) -> pd.DataFrame:
    """The zipped CSV with a UTC index (local wall clock + tz_localize) and prices in dollars."""
    path = LEAN / symbol.lower() / f"{day:%Y%m%d}_{kind}.zip"
    df = pd.read_csv(path, header=None, names=TRADE if kind == "trade" else QUOTE)
    local = pd.Timestamp(day) + pd.to_timedelta(df["ms"], unit="ms")
    df.index = pd.DatetimeIndex(local).tz_localize(TZ).tz_convert("UTC")
    for col in df.columns[1:]:
        if not col.endswith(("volume", "size")):
            df[col] = df[col] / 10_000
    return df


def utc(df: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(df.index)


def in_session(df: pd.DataFrame, session: SessionInfo) -> npt.NDArray[np.bool_]:
    ts = utc(df)
    return np.asarray((ts >= pd.Timestamp(session.open)) & (ts < pd.Timestamp(session.close)))


def regular(df: pd.DataFrame, session: SessionInfo) -> pd.DataFrame:
    return df.loc[in_session(df, session)]


def extended(df: pd.DataFrame, session: SessionInfo) -> pd.DataFrame:
    local = utc(df).tz_convert(TZ)
    day_part = (local.hour >= 4) & (local.hour < 20)
    return df.loc[day_part & ~in_session(df, session)]


def resample(bars: pd.DataFrame, session: SessionInfo, k: int) -> list[tuple[object, ...]]:
    agg = bars.resample(f"{k}min", origin=pd.Timestamp(session.open), label="left", closed="left")
    out = agg.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    out = out.dropna(subset=["open"])
    rows = zip(utc(out), out.itertuples(index=False), strict=True)
    return [(ts.to_pydatetime(), *row) for ts, row in rows]


def ranges_et(minutes: pd.DatetimeIndex) -> list[str]:
    out: list[list[pd.Timestamp]] = []
    for m in minutes:
        if out and out[-1][1] == m:
            out[-1][1] = m + pd.Timedelta(minutes=1)
        else:
            out.append([m, m + pd.Timedelta(minutes=1)])
    return [f"{a.tz_convert(TZ):%H:%M}-{b.tz_convert(TZ):%H:%M} ET" for a, b in out]


def bar_tuple(b: Bar) -> tuple[object, ...]:
    return (b.ts, b.open, b.high, b.low, b.close, b.volume)


# --- replay -----------------------------------------------------------------------------------


@dataclass
class Run:
    reports: list[SessionReport] = field(default_factory=list)
    rows: dict[tuple[date, str], SymbolReport] = field(default_factory=dict)
    bars: Counter[tuple[date, str]] = field(default_factory=Counter)
    quotes: Counter[tuple[date, str]] = field(default_factory=Counter)
    derived: dict[tuple[date, str, int], list[Bar]] = field(
        default_factory=lambda: defaultdict(list)
    )
    snapshots: dict[tuple[date, str], SymbolSnapshot] = field(default_factory=dict)
    sessions: dict[date, SessionStartEvent] = field(default_factory=dict)


def replay(path: Path, symbols: list[str], start: date, end: date, ext: bool = False) -> Run:
    settings = Settings(
        store_path=path, symbols=symbols, start=start, end=end, include_extended_hours=ext
    )
    system = build_system(settings)
    run = Run()
    day: list[date] = []

    def on_event(ev: Event) -> None:
        if isinstance(ev, SessionStartEvent):
            day[:] = [ev.session]
            run.sessions[ev.session] = ev
        elif isinstance(ev, BarEvent):
            run.bars[(day[0], ev.bar.symbol)] += 1
        elif isinstance(ev, QuoteEvent):
            run.quotes[(day[0], ev.quote.symbol)] += 1
        elif isinstance(ev, DerivedBarEvent):
            assert not ev.revised  # nothing is filled from a store that replays everything
            run.derived[(day[0], ev.bar.symbol, ev.bar.minutes)].append(ev.bar)
        elif isinstance(ev, SessionEndEvent):
            for s in symbols:
                run.snapshots[(ev.session, s)] = system.data_manager.snapshot(s)

    system.on_event(on_event)
    try:
        system.run()
    finally:
        system.store.close()
    run.reports = system.data_manager.reports
    run.rows = {(r.session, row.symbol): row for r in run.reports for row in r.rows}
    return run


@pytest.fixture(scope="module")
def october(store_path: Path) -> Run:
    return replay(store_path, ["SPY", "AIG", "BAC"], OCT[0], OCT[-1])


@pytest.fixture(scope="module")
def shy(store_path: Path) -> Run:
    return replay(store_path, ["SHY"], SHY_DAYS[0], SHY_DAYS[-1])


# --- import -----------------------------------------------------------------------------------


def table_digest(path: Path) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for table in ("bars_1m", "quotes"):
            rows = con.execute(f"SELECT * FROM {table} ORDER BY symbol, ts").fetchall()
            out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        return out
    finally:
        con.close()


def expected_store_rows(xnys: ExchangeCalendar) -> dict[str, int]:
    """Rows a correct import keeps: 04:00-20:00 on a session day, all prices present."""
    counts = Counter[str]()
    for path in sorted(LEAN.glob("*/*.zip")):
        day = datetime.strptime(path.name[:8], "%Y%m%d").date()
        kind = path.stem.split("_")[1]
        df = raw(kind, path.parent.name, day)
        if not xnys.is_session(day):
            continue
        kept = pd.concat([regular(df, xnys.session(day)), extended(df, xnys.session(day))])
        kept = kept.dropna()
        counts[kind] += len(kept)
        counts[f"{kind}_regular"] += len(regular(kept, xnys.session(day)))
    return counts


def test_import_all_counts_match_raw_and_reimport_is_identical(
    lean_dir: Path, tmp_path: Path, xnys: ExchangeCalendar
) -> None:
    path = tmp_path / "lean.duckdb"
    store = DuckDBStore(path)
    reports = import_lean(store, lean_dir, xnys)
    store.close()
    want = expected_store_rows(xnys)
    assert len(reports) == len(list(lean_dir.glob("*/*.zip")))
    for r in reports:
        assert r.imported == r.rows - sum(r.rejected.values()), r.file
        assert set(r.rejected) <= {"outside_session", "bad_number"}, r.to_dict()
    con = duckdb.connect(str(path), read_only=True)
    counts = [
        con.execute(f"SELECT count(*), count(*) FILTER (regular) FROM {t}").fetchall()[0]
        for t in ("bars_1m", "quotes")
    ]
    con.close()
    (n_bars, n_reg), (n_quotes, q_reg) = counts
    assert (n_bars, n_reg) == (want["trade"], want["trade_regular"])
    assert (n_quotes, q_reg) == (want["quote"], want["quote_regular"])
    assert sum(r.extended for r in reports) == n_bars - n_reg + n_quotes - q_reg
    before = table_digest(path)
    store = DuckDBStore(path)
    again = import_lean(store, lean_dir / "spy", xnys) + import_lean(store, lean_dir, xnys)
    store.close()
    assert [r.imported for r in again[len(list((lean_dir / "spy").glob("*.zip"))) :]] == [
        r.imported for r in reports
    ]
    assert table_digest(path) == before


def test_timestamps_are_utc_across_the_2008_dst_switch(store_path: Path) -> None:
    store = DuckDBStore(store_path)
    try:
        for day in SHY_DAYS:
            frame = raw("trade", "SHY", day)
            start = datetime.combine(day, datetime.min.time(), ZoneInfo(TZ))
            got = store.load_bars(["SHY"], start, start + pd.Timedelta(days=1), regular_only=False)
            want = frame.loc[utc(frame).tz_convert(TZ).hour < 20]
            assert [int(t) for t in got.ts_us] == [t.value // 1000 for t in utc(want)]
            assert list(got.close) == list(want["close"])
    finally:
        store.close()
    offsets = [utc(raw("trade", "SHY", d)).tz_convert(TZ)[0].utcoffset() for d in SHY_DAYS]
    assert offsets == [pd.Timedelta(hours=-5), pd.Timedelta(hours=-4)]


def test_local_ms_on_a_dst_switch_day_is_wall_clock() -> None:
    ms = np.array([3_600_000, 36_000_000], dtype=np.int64)  # 01:00 EST, 10:00 EDT
    got = local_ms_to_us(date(2008, 3, 9), ms, ZoneInfo(TZ))
    want = pd.DatetimeIndex(["2008-03-09 06:00", "2008-03-09 14:00"], tz="UTC")
    assert list(got) == [t.value // 1000 for t in want]


# --- replayed sessions vs pandas ----------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["SPY", "AIG", "BAC"])
def test_october_sessions_match_raw(october: Run, xnys: ExchangeCalendar, symbol: str) -> None:
    assert sorted(run_day for run_day, _ in october.rows if _ == symbol) == OCT
    for day in OCT:
        session = xnys.session(day)
        assert session.minutes == 390
        reg = regular(raw("trade", symbol, day), session)
        row = october.rows[(day, symbol)]
        assert row.bars == len(reg) == october.bars[(day, symbol)]
        assert row.expected == 390
        assert row.quality == round(len(reg) / 390 * 100, 4)
        assert row.volume == int(reg["volume"].sum())
        assert row.high == reg["high"].max()
        assert row.low == reg["low"].min()
        assert row.gaps_found == 390 - len(reg) and row.gaps_filled == 0
        for k in INTERVALS:
            got = [bar_tuple(b) for b in october.derived[(day, symbol, k)]]
            assert got == resample(reg, session, k), (day, symbol, k)
            assert row.derived[k] == len(got)


def test_aig_has_a_real_one_minute_gap(october: Run) -> None:
    rows = report_rows(october.reports, {}, ExchangeCalendar().tz)
    aig = next(r for r in rows if r.symbol == "AIG" and r.session == date(2013, 10, 7))
    missing = pd.DatetimeIndex(["2013-10-07 17:47"], tz="UTC")
    assert aig.gaps == ranges_et(missing) == ["13:47-13:48 ET"]


@pytest.mark.parametrize("symbol", ["SPY", "AIG", "BAC"])
def test_quotes_reach_symbol_session_data(
    october: Run, xnys: ExchangeCalendar, symbol: str
) -> None:
    for day in OCT:
        reg = regular(raw("quote", symbol, day), xnys.session(day))
        assert not reg.isna().any().any()
        assert october.quotes[(day, symbol)] == len(reg) == october.rows[(day, symbol)].quotes
        snap = october.snapshots[(day, symbol)]
        got = [
            (q.ts, q.bid_open, q.bid_high, q.bid_low, q.bid_close, q.bid_size,
             q.ask_open, q.ask_high, q.ask_low, q.ask_close, q.ask_size)
            for q in snap.quotes
        ]  # fmt: skip
        want = [
            (t.to_pydatetime(), *r)
            for t, r in zip(utc(reg), reg.iloc[:, 1:].itertuples(index=False), strict=True)
        ]
        assert got == want


def test_shy_thin_sessions_quality_and_gaps(shy: Run, xnys: ExchangeCalendar) -> None:
    rows = {r.session: r for r in report_rows(shy.reports, {}, xnys.tz)}
    for day in SHY_DAYS:
        session = xnys.session(day)
        reg = regular(raw("trade", "SHY", day), session)
        quality = round(len(reg) / session.minutes * 100, 4)
        assert quality < 90
        row = shy.rows[(day, "SHY")]
        assert (row.bars, row.expected, row.quality) == (len(reg), 390, quality)
        assert row.volume == int(reg["volume"].sum())
        assert (row.high, row.low) == (reg["high"].max(), reg["low"].min())
        every = pd.date_range(session.open, session.close, freq="1min", inclusive="left")
        assert rows[day].gaps == ranges_et(every.difference(utc(reg)))
        assert row.gaps_found == len(every) - len(reg)
        for k in INTERVALS:
            got = [bar_tuple(b) for b in shy.derived[(day, "SHY", k)]]
            assert got == resample(reg, session, k)
    # the session open moved an hour in UTC over the 2008-03-09 DST switch
    opens = [shy.sessions[d].open.hour for d in SHY_DAYS]
    assert opens == [14, 13]


def test_extended_hours_replay_keeps_regular_state(
    store_path: Path, october: Run, xnys: ExchangeCalendar
) -> None:
    day = OCT[0]
    ext = replay(store_path, ["SPY", "BAC"], day, day, ext=True)
    session = xnys.session(day)
    for symbol in ("SPY", "BAC"):
        snap, base = ext.snapshots[(day, symbol)], october.snapshots[(day, symbol)]
        want = extended(raw("trade", symbol, day), session)
        assert [b.ts for b in snap.extended_bars] == [t.to_pydatetime() for t in want.index]
        assert not any(b.regular for b in snap.extended_bars)
        assert snap.bars_1m == base.bars_1m
        assert len(snap.extended_bars) == ext.rows[(day, symbol)].extended_bars > 0
        assert snap.quotes == base.quotes  # extended-hours quotes are kept aside, like bars
        assert snap.extended_quotes and not any(q.regular for q in snap.extended_quotes)
        assert len(snap.extended_quotes) == ext.rows[(day, symbol)].extended_quotes
        a, b = ext.rows[(day, symbol)], october.rows[(day, symbol)]
        assert (a.quality, a.expected, a.bars, a.volume, a.high, a.low, a.derived) == (
            b.quality, b.expected, b.bars, b.volume, b.high, b.low, b.derived,
        )  # fmt: skip


# --- corrupt files and row checks (generated zips) ------------------------------------------


def make_zip(path: Path, members: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


GOOD_ROW = "34200000,1000000,1010000,990000,1000000,100\n"  # 09:30 ET, $100


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a zip", "unreadable zip"),
        ({"readme.txt": "hello"}, "one CSV"),
        ({"x.csv": "1,2,3\n4,5,6\n"}, "no row has the 6 fields"),
        ({"x.csv": ""}, "empty"),
    ],
)
def test_corrupt_zip_aborts_and_store_is_unchanged(
    lean_dir: Path, tmp_path: Path, xnys: ExchangeCalendar, content: object, message: str
) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    import_lean(store, lean_dir / "shy", xnys)
    store.close()
    before = table_digest(path)
    make_zip(tmp_path / "lean" / "zzz" / "20131004_trade.zip", {"a.csv": GOOD_ROW})
    bad = tmp_path / "lean" / "zzz" / "20131007_trade.zip"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        assert isinstance(content, dict)
        make_zip(bad, content)
    store = DuckDBStore(path)
    with pytest.raises(ImportError_, match=message) as exc:
        import_lean(store, tmp_path / "lean", xnys)
    store.close()
    assert str(bad) in str(exc.value)
    assert table_digest(path) == before


def test_row_checks_reasons_and_lines(tmp_path: Path, xnys: ExchangeCalendar) -> None:
    rows = [
        GOOD_ROW,  # 1 ok, regular
        "34260000,1000000,1010000,990000,1000000\n",  # 2 malformed
        "abc,1000000,1010000,990000,1000000,100\n",  # 3 unparsable time
        "34320000,1000000,,990000,1000000,100\n",  # 4 bad number
        "34380000,1000000,980000,990000,1000000,100\n",  # 5 high < low
        "34440000,1000000,1010000,990000,1000000,-1\n",  # 6 negative volume
        "34470000,1000000,1010000,990000,1000000,100\n",  # 7 not minute aligned
        "14340000,1000000,1010000,990000,1000000,100\n",  # 8 03:59 outside
        "72000000,1000000,1010000,990000,1000000,100\n",  # 9 20:00 outside
        "34200000,1000000,1010000,990000,1000000,100\n",  # 10 duplicate
        "57600000,1000000,1010000,990000,1000000,100\n",  # 11 16:00 extended, kept
        "34500000,1000000,1010000,990000,1000000,100\n",  # 12 out of order
        "\n",  # blank, not a row
    ]
    path = make_zip(tmp_path / "abc" / "20131004_trade.zip", {"a.csv": "".join(rows)})
    batch, report = read_lean_file(LeanFile(path, "ABC", date(2013, 10, 4), "trade"), xnys)
    assert [(ln, reason) for ln, reason, _ in report.rejections] == [
        (2, "malformed_row"), (3, "unparsable_time"), (4, "bad_number"), (5, "high_below_low"),
        (6, "negative_volume"), (7, "not_minute_aligned"), (8, "outside_session"),
        (9, "outside_session"), (10, "duplicate"), (12, "out_of_order"),
    ]  # fmt: skip
    assert (report.rows, report.extended, len(batch)) == (12, 1, 2)
    assert isinstance(batch, BarBatch)
    assert list(batch.regular) == [True, False]
    assert list(batch.high) == [101.0, 101.0]


def test_a_repeated_minute_alone_is_a_duplicate(tmp_path: Path, xnys: ExchangeCalendar) -> None:
    """Minutes that never go back but repeat one: not the all-increasing shortcut."""
    row = "{},1000000,1010000,990000,1000000,100\n"
    text = "".join(row.format(ms) for ms in (34200000, 34260000, 34260000, 34320000))
    path = make_zip(tmp_path / "abc" / "20131004_trade.zip", {"a.csv": text})
    batch, report = read_lean_file(LeanFile(path, "ABC", date(2013, 10, 4), "trade"), xnys)
    assert [(ln, reason) for ln, reason, _ in report.rejections] == [(3, "duplicate")]
    assert len(batch) == 3


def test_non_session_date_is_outside_session(tmp_path: Path, xnys: ExchangeCalendar) -> None:
    path = make_zip(tmp_path / "abc" / "20131005_trade.zip", {"a.csv": GOOD_ROW})  # Saturday
    batch, report = read_lean_file(LeanFile(path, "ABC", date(2013, 10, 5), "trade"), xnys)
    assert len(batch) == 0 and report.rejected == {"outside_session": 1}


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_import_lean_and_report(lean_dir: Path, tmp_path: Path, xnys: ExchangeCalendar) -> None:
    runner = CliRunner()
    store = tmp_path / "cli.duckdb"
    out = runner.invoke(
        app, ["import", "lean", str(lean_dir / "shy"), "--store", str(store), "--json"]
    )
    assert out.exit_code == 0, out.output
    assert [Path(r["file"]).name for r in json.loads(out.output)] == sorted(
        p.name for p in (lean_dir / "shy").glob("*.zip")
    )
    csv_path, json_path = tmp_path / "r.csv", tmp_path / "r.json"
    args = ["report", "--symbols", "SHY", "--start", "2008-03-07", "--end", "2008-03-10"]
    args += ["--store", str(store)]
    out = runner.invoke(app, [*args, "--output", str(csv_path)])
    assert out.exit_code == 0, out.output
    as_json = runner.invoke(app, [*args, "--json", "-o", str(json_path)])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(json_path.read_text())
    assert json.loads(as_json.stdout) == rows  # --json prints, --output writes: the same rows
    table = pd.read_csv(csv_path)
    assert [r["session"] for r in rows] == list(table["session"]) == ["2008-03-07", "2008-03-10"]
    for r, (_, c) in zip(rows, table.iterrows(), strict=True):
        reg = regular(
            raw("trade", "SHY", date.fromisoformat(r["session"])),
            xnys.session(date.fromisoformat(r["session"])),
        )
        assert r["bars"] == c["bars"] == len(reg)
        assert r["quality"] == c["quality"] == round(len(reg) / 390 * 100, 4)
        assert "; ".join(r["gaps"]) == c["gaps"]
        assert r["gaps"][0] in out.output
