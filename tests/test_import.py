"""Every rejection reason, with its line number; unreadable files abort and write nothing."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sessionflow.importer import ImportError_, import_bars
from sessionflow.store import DuckDBStore
from sessionflow.time_provider import ExchangeCalendar

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n"


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def checksum(store: DuckDBStore) -> object:
    return (
        store._cursor()
        .execute(
            "SELECT count(*), sum(hash(symbol, ts, open, high, low, close, volume)) FROM bars_1m"
        )
        .fetchone()
    )


def test_each_bad_row_is_rejected_with_reason_and_line(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    rows = [
        GOOD,  # line 2 ok
        "2024-11-29T09:31:00-05:00,10,11,9,10,50\n",  # 3 ok
        "2024-11-29T09:31:00-05:00,10,11,9,10,50\n",  # 4 duplicate
        "2024-11-29T09:30:30-05:00,10,11,9,10,50\n",  # 5 not aligned
        "2024-11-29T09:29:00-05:00,10,11,9,10,50\n",  # 6 outside (pre-market, not kept)
        "2024-11-29T09:33:00-05:00,nan,11,9,10,50\n",  # 7 nan
        "2024-11-29T09:34:00-05:00,10,8,9,10,50\n",  # 8 high < low
        "2024-11-29T09:35:00-05:00,10,10.2,9,10.5,50\n",  # 9 high < close
        "2024-11-29T09:36:00-05:00,10,11,9,10,-5\n",  # 10 negative volume
        "yesterday,10,11,9,10,5\n",  # 11 unparsable time
        "2024-11-29T09:37:00-05:00,10,11,9\n",  # 12 malformed
        "2024-11-28T10:00:00-05:00,10,11,9,10,5\n",  # 13 holiday: outside session
        "2024-11-29T13:00:00-05:00,10,11,9,10,5\n",  # 14 after the 13:00 early close
        "2024-11-29T09:32:00-05:00,10,11,9,10,5\n",  # 15 ok (different symbol order ok)
        "2024-11-29T09:31:30-05:00,10,11,9,10,5\n",  # 16 not aligned
        "2024-11-29T09:31:00-05:00,10,11,9,10,5\n",  # 17 duplicate of line 3
        "2024-11-29T09:38:00-05:00,10,inf,9,10,5\n",  # 18 inf
        "2024-11-29T09:30:00-05:00,x,11,9,10,5\n",  # 19 bad number
    ]
    store = DuckDBStore(":memory:")
    report = import_bars(store, write(tmp_path, HEADER + "".join(rows)), calendar, "abc")
    got = {(line, reason) for line, reason, _ in report.rejections}
    assert got == {
        (4, "duplicate"),
        (5, "not_minute_aligned"),
        (6, "outside_session"),
        (7, "nan_or_inf"),
        (8, "high_below_low"),
        (9, "high_below_open_close"),
        (10, "negative_volume"),
        (11, "unparsable_time"),
        (12, "malformed_row"),
        (13, "outside_session"),
        (14, "outside_session"),
        (16, "not_minute_aligned"),
        (17, "duplicate"),
        (18, "nan_or_inf"),
        (19, "bad_number"),
    }
    assert report.imported == store.count_bars() == 3
    assert report.rows == len(rows)
    assert store.symbols() == ["ABC"]


def test_out_of_order_rows_are_rejected(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    text = HEADER + "2024-11-29T09:35:00-05:00,10,11,9,10,1\n" + GOOD
    report = import_bars(DuckDBStore(":memory:"), write(tmp_path, text), calendar, "X")
    assert report.rejections[0][:2] == (3, "out_of_order")


def test_multi_symbol_csv_and_mixed_offsets(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    text = (
        "symbol,timestamp,open,high,low,close,volume\n"
        "aaa,2024-11-29T09:30:00-05:00,1,2,0.5,1,10\n"
        "bbb,2024-11-29T14:30:00+00:00,1,2,0.5,1,10\n"
        "aaa,2024-11-29 09:31:00,1,2,0.5,1,10\n"  # naive: read in the zone passed (--tz)
    )
    store = DuckDBStore(":memory:")
    report = import_bars(store, write(tmp_path, text), calendar, tz=calendar.tz)
    assert report.imported == 3 and not report.rejected
    assert store.symbols() == ["AAA", "BBB"]


def test_parquet_import(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    import datetime as dt

    tz = dt.timezone(dt.timedelta(hours=-5))
    table = pa.table(
        {
            "ts": [
                dt.datetime(2024, 11, 29, 9, 30, tzinfo=tz),
                dt.datetime(2024, 11, 29, 9, 31, tzinfo=tz),
            ],
            "open": [1.0, 1.0],
            "high": [2.0, 0.1],
            "low": [0.5, 0.5],
            "close": [1.0, 1.0],
            "volume": [10, 10],
        }
    )
    path = tmp_path / "b.parquet"
    pq.write_table(table, path)
    report = import_bars(DuckDBStore(":memory:"), path, calendar, "PQ")
    assert report.imported == 1
    assert report.rejections[0][:2] == (3, "high_below_low")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", "not a UTF-8 text file"),
        (b"when,o,h,l,c,v\n2024-11-29T09:30:00-05:00,1,2,0,1,1\n", "missing column"),
        (b"\n", "missing column"),
    ],
)
def test_unreadable_file_aborts_and_store_is_unchanged(
    tmp_path: Path, calendar: ExchangeCalendar, content: bytes, message: str
) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    import_bars(store, write(tmp_path, HEADER + GOOD, "good.csv"), calendar, "X")
    before = checksum(store)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(ImportError_, match=message) as err:
        import_bars(store, bad, calendar, "X")
    assert str(bad) in str(err.value)
    assert checksum(store) == before


def test_missing_symbol_is_a_clear_error(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    with pytest.raises(ImportError_, match="no symbol column; pass --symbol"):
        import_bars(DuckDBStore(":memory:"), write(tmp_path, HEADER + GOOD), calendar)
