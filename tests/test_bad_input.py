"""Bad input the other import tests do not cover, and bad bars written into a running session.

Every case ends in a clear error (and an unchanged store) or a counted rejection
with a reason; a running session never crashes and loses none of its good bars.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sessionflow import Bar, BarEvent, Event, Quote, SystemManager, Tick
from sessionflow.check.bad_input import lean_trade_zip
from sessionflow.check.stores import store_checksum
from sessionflow.demo import synthetic_bars
from sessionflow.importer import ImportError_, import_bars, import_lean, read_bar_file
from sessionflow.models import from_us, to_us
from sessionflow.session_data import SessionData
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import cli_result, demo_settings, error_line, run_collect

FRIDAY = date(2024, 11, 29)  # 13:00 ET early close, 210 minutes
HOLIDAY = date(2024, 11, 28)
HEADER = "timestamp,open,high,low,close,volume\n"
ROWS = [
    "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n",
    "2024-11-29T09:31:00-05:00,10.5,11.5,10,11,250\n",
    "2024-11-29T09:32:00-05:00,11,12,10.5,11.5,75\n",
]


Row = tuple[str, str, float, float, float, float, int]


def stored(store: DuckDBStore) -> list[Row]:
    return rows_of(
        store.load_bars(store.symbols(), datetime(2024, 11, 27, tzinfo=UTC),
                        datetime(2024, 12, 1, tzinfo=UTC), regular_only=False)
    )  # fmt: skip


def rows_of(b: BarBatch) -> list[Row]:
    return [
        (str(s), from_us(int(t)).isoformat(), float(o), float(h), float(lo), float(c), int(v))
        for s, t, o, h, lo, c, v in zip(
            b.symbol, b.ts_us, b.open, b.high, b.low, b.close, b.volume, strict=True
        )
    ]


def test_csv_truncated_at_every_byte_keeps_whole_rows_or_aborts_cleanly(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    """A file cut anywhere (a copy interrupted, a disk full) never imports a partial row."""
    text = (HEADER + "".join(ROWS)).encode()
    full = DuckDBStore(":memory:")
    import_bars(full, _write(tmp_path / "full.csv", text), calendar, "T")
    complete = stored(full)
    outcomes = {"aborted": 0, "cut_row_rejected": 0, "cut_row_kept": 0, "whole_rows": 0}
    for cut in range(len(text)):
        path = _write(tmp_path / "cut.csv", text[:cut])
        if cut < len(HEADER) - 1:  # the header itself is cut
            with pytest.raises(ImportError_, match=r"file is empty|missing column") as err:
                read_bar_file(path, calendar, "T")
            assert str(path) in str(err.value)
            outcomes["aborted"] += 1
            continue
        batch, report = read_bar_file(path, calendar, "T")
        got = rows_of(batch)
        if cut % 16 == 0:  # and through the store now and then: it holds exactly these rows
            store = DuckDBStore(":memory:")
            if got:
                assert import_bars(store, path, calendar, "T").imported == len(got)
            else:  # a file with no importable row fails the import (docs/cli.md)
                with pytest.raises(ImportError_, match="no row could be imported"):
                    import_bars(store, path, calendar, "T")
            assert stored(store) == got
        body = text[len(HEADER) : cut].decode()
        whole, partial = body.count("\n"), body.rsplit("\n", 1)[-1]
        assert got[:whole] == complete[:whole]
        assert len(got) + sum(report.rejected.values()) == report.rows
        if not partial:
            assert len(got) == whole and not report.rejected
            outcomes["whole_rows"] += 1
        elif len(got) == whole:
            assert list(report.rejected) in (["malformed_row"], ["bad_number"])
            assert [r[0] for r in report.rejections] == [whole + 2]  # the cut row's line
            outcomes["cut_row_rejected"] += 1
        else:
            # only the volume, the last field, can be cut and still parse: "250" -> "2"
            assert len(got) == whole + 1 and got[-1][:6] == complete[whole][:6]
            assert str(complete[whole][6]).startswith(str(got[-1][6]))
            outcomes["cut_row_kept"] += 1
    assert all(n > 0 for n in outcomes.values()), outcomes


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("keep", [0, 30, 0.5, -22, -1], ids=lambda k: f"keep={k}")
def test_truncated_zip_aborts_and_store_is_unchanged(
    tmp_path: Path, calendar: ExchangeCalendar, keep: float
) -> None:
    """A zip cut short (download interrupted): the whole import stops before any write."""
    data = lean_trade_zip()
    root = tmp_path / "lean" / "zzz"
    root.mkdir(parents=True)
    (root / "20131004_trade.zip").write_bytes(data)  # a good file in the same import
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    bad = root / "20131007_trade.zip"
    bad.write_bytes(data[:n])
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.upsert_bars(synthetic_bars(calendar, ["OLD"], FRIDAY, FRIDAY))
    before = store_checksum(store)
    with pytest.raises(ImportError_, match="unreadable zip") as err:
        import_lean(store, tmp_path / "lean", calendar)
    assert str(bad) in str(err.value)
    assert store_checksum(store) == before
    bad.write_bytes(data)  # the re-downloaded file imports, both days
    import_lean(store, tmp_path / "lean", calendar)
    assert store.count_bars() == 210 + 2 * 390


def test_mixed_utc_offsets_in_one_file_are_one_timeline(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    """Offsets are converted first, so duplicates and order are judged on the UTC instant."""
    text = HEADER + (
        "2024-11-29T09:30:00-05:00,10,11,9,10,1\n"  # 2: 14:30Z
        "2024-11-29T14:31:00+00:00,10,11,9,10,1\n"  # 3: 14:31Z
        "2024-11-29 09:32:00,10,11,9,10,1\n"  # 4: naive, --tz exchange: 14:32Z
        "2024-11-29T14:30:00Z,10,11,9,10,1\n"  # 5: 14:30Z again: duplicate of line 2
        "2024-11-29T10:35:00-04:00,10,11,9,10,1\n"  # 6: 14:35Z
        "2024-11-29T15:34:00+01:00,10,11,9,10,1\n"  # 7: 14:34Z, after 14:35Z: out of order
        "2024-11-29T09:36:00,10,11,9,10,1\n"  # 8: 14:36Z
        "2024-11-29T09:37:00+09:00,10,11,9,10,1\n"  # 9: 00:37Z = 19:37 ET on the holiday
    )
    store = DuckDBStore(":memory:")
    path = _write(tmp_path / "tz.csv", text.encode())
    report = import_bars(store, path, calendar, "TZ", tz=calendar.tz)
    assert [(line, reason) for line, reason, _ in report.rejections] == [
        (5, "duplicate"),
        (7, "out_of_order"),
        (9, "outside_session"),
    ]
    assert [row[1] for row in stored(store)] == [
        f"2024-11-29T14:{m}:00+00:00" for m in ("30", "31", "32", "35", "36")
    ]


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("Date,Open,High,Low,Close,Vol", "volume"),
        ("timestamp,open,hi,lo,close,volume", "high, low"),
        ("t,o,h,l,c,v", "open, high, low, close, volume, time"),
    ],
)
def test_wrong_column_names_name_the_missing_columns(
    tmp_path: Path, calendar: ExchangeCalendar, header: str, missing: str
) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    import_bars(store, _write(tmp_path / "ok.csv", (HEADER + ROWS[0]).encode()), calendar, "X")
    before = store_checksum(store)
    path = _write(tmp_path / "bad.csv", f"{header}\n{ROWS[1]}".encode())
    with pytest.raises(ImportError_, match=f"missing column\\(s\\) {missing};"):
        import_bars(store, path, calendar, "X")
    assert store_checksum(store) == before


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2024-11-28", "2024-11-28", "no XNYS sessions between 2024-11-28 and 2024-11-28"),
        ("2024-11-30", "2024-12-01", "no XNYS sessions between 2024-11-30 and 2024-12-01"),
        ("2024-12-02", "2024-11-29", "end 2024-11-29 is before start 2024-12-02"),
    ],
)
def test_backtest_on_dates_without_a_session_is_a_clear_cli_error(
    demo_store_path: Path, start: str, end: str, message: str
) -> None:
    args = ["backtest", "--store", str(demo_store_path), "--symbols", "AAPL"]
    res = cli_result(*args, "--start", start, "--end", end)
    assert res.exit_code == 2
    assert message in error_line(res, "error:")


def test_session_data_refuses_writes_before_a_session(calendar: ExchangeCalendar) -> None:
    sd = SessionData(["AAA"])
    bar = Bar("AAA", calendar.session(FRIDAY).open, 1, 2, 0.5, 1, 10)
    with pytest.raises(RuntimeError, match="write_bars before start_session"):
        sd.add_bars([bar])
    assert sd.current_session is None and sd.snapshot("AAA").bars_1m == ()


@pytest.fixture
def friday_store(tmp_path: Path, calendar: ExchangeCalendar) -> Path:
    """AAA and BBB on the early-close Friday; AAA's 09:50 bar is missing from the store."""
    session = calendar.session(FRIDAY)
    bars = synthetic_bars(calendar, ["AAA", "BBB"], FRIDAY, FRIDAY)
    hole = (bars.symbol == "AAA") & (bars.ts_us == to_us(session.open) + 20 * 60_000_000)
    store = DuckDBStore(tmp_path / "friday.duckdb")
    store.upsert_bars(bars.take(~hole))
    store.close()
    return tmp_path / "friday.duckdb"


def test_bad_bars_written_into_a_running_session_are_counted_and_lose_nothing(
    friday_store: Path, calendar: ExchangeCalendar
) -> None:
    """A strategy or feed writes junk mid-session: every bar is refused with a reason."""
    settings = demo_settings(friday_store, symbols=["AAA", "BBB"], start=FRIDAY, end=FRIDAY)
    clean, clean_events = run_collect(settings)
    session = calendar.session(FRIDAY)
    at = session.open + timedelta(minutes=30)
    nan, inf = math.nan, math.inf
    junk = [
        Bar("AAA", at, 1, 2, 0.5, 1, 10),  # duplicate: the 10:00 bar was just delivered
        Bar("AAA", session.open + timedelta(minutes=20), 1, 2, 0.5, 1, 10),  # out_of_order
        Bar("AAA", session.open - timedelta(minutes=1), 1, 2, 0.5, 1, 10),  # outside_session
        Bar("AAA", session.close, 1, 2, 0.5, 1, 10),  # 13:00 ET, after the early close
        Bar("AAA", session.open - timedelta(days=1), 1, 2, 0.5, 1, 10),  # on the holiday
        Bar("AAA", at + timedelta(minutes=1, seconds=30), 1, 2, 0.5, 1, 10),  # not aligned
        Bar("AAA", at + timedelta(minutes=10), nan, 2, 0.5, 1, 10),  # nan_or_inf
        Bar("BBB", at + timedelta(minutes=10), 1, inf, 0.5, 1, 10),  # nan_or_inf
        Bar("BBB", at + timedelta(minutes=11), 1, 0.4, 0.5, 1, 10),  # high_below_low
        Bar("BBB", at + timedelta(minutes=12), 1, 2, 0.5, 1, -10),  # negative_volume
        Bar("ZZZ", at + timedelta(minutes=10), 1, 2, 0.5, 1, 10),  # unknown symbol
    ]
    kept: list[list[Bar]] = []

    def inject(system: SystemManager, ev: Event) -> None:
        if isinstance(ev, BarEvent) and ev.bar.symbol == "BBB" and ev.bar.ts == at and not kept:
            sd = system.data_manager.session_data
            kept.append(sd.add_bars(junk))
            sd.add_quotes([Quote("ZZZ", at, 1, 1, 1, 1, 1, 2, 2, 2, 2, 1)])
            sd.add_ticks([Tick("ZZZ", at, 1.5, 100)])

    system, events = run_collect(settings, on_event=inject)
    assert kept == [[]]
    sd = system.data_manager.session_data
    assert sd.unknown_symbols == {"ZZZ": 3}
    reports = system.data_manager.reports[0].rows
    assert {r.symbol: r.rejections for r in reports} == {
        "AAA": {
            "duplicate": 1,
            "out_of_order": 1,
            "outside_session": 3,
            "not_minute_aligned": 1,
            "nan_or_inf": 1,
        },
        "BBB": {"nan_or_inf": 1, "high_below_low": 1, "negative_volume": 1},
    }
    # nothing good was lost or altered: the same bars, figures and derived bars as a clean run
    assert [dataclasses.replace(r, rejections={}) for r in reports] == list(
        clean.data_manager.reports[0].rows
    )
    assert [repr(e) for e in events if not _is_end(e)] == [
        repr(e) for e in clean_events if not _is_end(e)
    ]
    assert reports[0].bars == 209 and reports[1].bars == 210


def _is_end(ev: Event) -> bool:
    return type(ev).__name__ == "SessionEndEvent"  # its report carries the rejection counts


def test_volume_high_low_ignore_rejected_bars(calendar: ExchangeCalendar) -> None:
    """A rejected bar never touches session volume/high/low (the figures a strategy reads)."""
    session = calendar.session(FRIDAY)
    sd = SessionData(["AAA"])
    sd.start_session(session)
    good = Bar("AAA", session.open, 10, 11, 9, 10.5, 100)
    t1 = session.open + timedelta(minutes=1)
    bad = [
        Bar("AAA", t1, 10, 11, 12, 10, 5),  # high < low
        Bar("AAA", t1, 10, 11, 9, 10, -500),
        Bar("AAA", t1, 10, 11, -math.inf, 10, 5),
    ]
    assert sd.add_bars([good, *bad]) == [good]
    snap = sd.snapshot("AAA")
    assert (snap.session_volume, snap.session_high, snap.session_low) == (100, 11.0, 9.0)
    assert snap.bars_1m == (good,)
    assert snap.rejections == {"high_below_low": 1, "nan_or_inf": 1, "negative_volume": 1}
    assert np.isfinite([b.open for b in snap.bars_1m]).all()
