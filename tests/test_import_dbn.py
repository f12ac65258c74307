"""``import bars --preset databento``: DBN ohlcv-1m files (issue 22, item 2).

The files are written here with databento-dbn's own encoder (``Metadata`` and
``OHLCVMsg`` to bytes, ``Transcoder`` for zstd), so the reader is checked against the
format as the package writes it, not against our idea of it.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import databento_dbn as dbn
import numpy as np
import pyarrow as pa
import pytest

from sessionflow.importer import ImportReport, bar_job, run_import
from sessionflow.importer.dbn import to_prices
from sessionflow.importer.layout import layout
from sessionflow.store import DuckDBStore
from sessionflow.testing.dbn_files import Interval, Mapping, write_dbn
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import cli_result, error_line

DAY1, DAY2 = date(2024, 11, 26), date(2024, 11, 27)


def ns(day: date, hhmm: str) -> int:
    """Epoch ns of a New York wall time in late November (UTC-5)."""
    h, m = map(int, hhmm.split(":"))
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return (midnight + (h + 5) * 3600 + m * 60) * 10**9


def px(text: str) -> int:
    return int(Decimal(text) * 10**9)


def bar(iid: int, t: int, o: str, h: str, lo: str, c: str, v: int, rtype: int = 33) -> bytes:
    return bytes(dbn.OHLCVMsg(rtype, 2, iid, t, px(o), px(h), px(lo), px(c), v))


def write(path: Path, records: list[bytes], mappings: list[Mapping], **kw: Any) -> Path:
    return write_dbn(
        path, b"".join(records), mappings, start_ns=ns(DAY1, "00:00") - 5 * 3600 * 10**9, **kw
    )


# Instrument ids change with the date: AAPL is 38 on DAY1 and 40 on DAY2, 38 is another
# listing (NEWCO) on DAY2, and 41 (OLDCO) ends before DAY2 (end dates are exclusive). A
# reader ignoring the date ranges maps them wrong.
MAPPINGS = [
    Mapping("AAPL", [Interval(DAY1, DAY2, "38"), Interval(DAY2, date(2024, 11, 28), "40")]),
    Mapping("NEWCO", [Interval(DAY2, date(2024, 11, 28), "38")]),
    Mapping("OLDCO", [Interval(DAY1, DAY2, "41")]),
]
KEPT = [  # (record index, symbol, day, time, open, high, low, close, volume)
    (0, "AAPL", DAY1, "09:30", "234.1", "234.3", "234.05", "234.25", 4930),
    (1, "AAPL", DAY1, "09:31", "234.25", "234.35", "234.15", "234.2", 3100),
    (3, "NEWCO", DAY2, "09:30", "12.0001", "12.02", "11.99", "12.01", 700),
    (4, "AAPL", DAY2, "09:30", "235.07", "235.5", "234.9", "235.41", 51234),
    (8, "AAPL", DAY2, "15:59", "235.8", "236.0", "235.61", "235.99", 120_034),
]
RECORDS = [
    bar(38, ns(DAY1, "09:30"), "234.1", "234.3", "234.05", "234.25", 4930),
    bar(38, ns(DAY1, "09:31"), "234.25", "234.35", "234.15", "234.2", 3100),
    bar(40, ns(DAY1, "09:32"), "234.2", "234.4", "234.1", "234.3", 2000),  # 40 is nothing yet
    bar(38, ns(DAY2, "09:30"), "12.0001", "12.02", "11.99", "12.01", 700),
    bar(40, ns(DAY2, "09:30"), "235.07", "235.5", "234.9", "235.41", 51234),
    bar(38, ns(DAY1, "09:31"), "234.3", "234.35", "234.15", "234.2", 99),  # duplicate of 1
    bar(38, ns(DAY1, "08:00"), "233.0", "233.5", "232.9", "233.1", 500),  # pre-market
    bytes(
        dbn.OHLCVMsg(
            33, 2, 40, ns(DAY2, "09:31"), dbn.UNDEF_PRICE, px("235.5"), px("235.3"), px("235.4"), 10
        )
    ),
    bar(40, ns(DAY2, "15:59"), "235.8", "236.0", "235.61", "235.99", 120_034),
    bar(40, ns(DAY2, "16:00"), "236.0", "236.1", "235.9", "236.05", 900_000),  # after the close
    bar(41, ns(DAY2, "09:45"), "3.1", "3.2", "3.0", "3.15", 100),  # 41 ended on DAY2
]
REJECTED = [
    (2, "unmapped_instrument", "instrument_id 40 on 2024-11-26 (UTC): no mapping in the file's "
     "metadata"),
    (5, "duplicate", "AAPL 2024-11-26T09:31:00-05:00"),
    (6, "outside_session", "2024-11-26T08:00:00-05:00"),
    (7, "bad_number", "open is UNDEF_PRICE (no price)"),
    (9, "outside_session", "2024-11-27T16:00:00-05:00"),
    (10, "unmapped_instrument", "instrument_id 41 on 2024-11-27 (UTC): no mapping in the file's "
     "metadata"),
]  # fmt: skip


def run(paths: list[Path], calendar: ExchangeCalendar, store: DuckDBStore) -> list[ImportReport]:
    jobs = [bar_job(p, calendar, layout=layout(preset="databento")) for p in paths]
    result = run_import(store, jobs)
    result.raise_on_error()
    return result.reports


def stored(store: DuckDBStore) -> list[tuple[object, ...]]:
    batch = store.load_bars(["AAPL", "NEWCO", "OLDCO"], datetime(2024, 11, 1, tzinfo=UTC),
                            datetime(2024, 12, 1, tzinfo=UTC))  # fmt: skip
    return sorted(zip(batch.symbol.tolist(), batch.ts_us.tolist(), batch.open.tolist(),
                      batch.high.tolist(), batch.low.tolist(), batch.close.tolist(),
                      batch.volume.tolist(), strict=True))  # fmt: skip


@pytest.mark.parametrize("name", ["bars.dbn", "bars.dbn.zst"])
def test_stored_bars_are_the_records_written(
    tmp_path: Path, calendar: ExchangeCalendar, name: str
) -> None:
    path = write(tmp_path / name, RECORDS, MAPPINGS)
    store = DuckDBStore(":memory:")
    (report,) = run([path], calendar, store)
    assert report.rejections == REJECTED
    assert report.rows == len(RECORDS) and report.new == len(KEPT)
    assert stored(store) == sorted(
        (sym, ns(day, t) // 1000, float(o), float(h), float(lo), float(c), v)
        for _, sym, day, t, o, h, lo, c, v in KEPT
    )  # the bar's open is ts_event, prices are the doubles of the decimal text


@pytest.mark.parametrize("version", [1, 2])
def test_older_dbn_versions_give_the_same_bars(
    tmp_path: Path, calendar: ExchangeCalendar, version: int
) -> None:
    """Files Databento wrote before DBN 3 (their metadata differs; OHLCV records do not)."""
    path = write(tmp_path / "old.dbn", RECORDS, MAPPINGS, version=version)
    assert path.read_bytes()[:4] == b"DBN" + bytes([version])
    store = DuckDBStore(":memory:")
    (report,) = run([path], calendar, store)
    assert report.rejections == REJECTED
    assert stored(store) == sorted(
        (sym, ns(day, t) // 1000, float(o), float(h), float(lo), float(c), v)
        for _, sym, day, t, o, h, lo, c, v in KEPT
    )


def test_same_bars_as_csv_are_unchanged(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    """A DBN file and a CSV of the same bars store the same values, bit for bit."""
    lines = ["symbol,timestamp,open,high,low,close,volume"] + [
        f"{sym},{datetime.fromtimestamp(ns(day, t) / 1e9, UTC).isoformat()},{o},{h},{lo},{c},{v}"
        for _, sym, day, t, o, h, lo, c, v in KEPT
    ]
    csv = tmp_path / "bars.csv"
    csv.write_text("\n".join(lines) + "\n")
    store = DuckDBStore(":memory:")
    (first,) = run_import(store, [bar_job(csv, calendar)]).reports
    assert first.new == len(KEPT)
    (again,) = run([write(tmp_path / "bars.dbn", RECORDS, MAPPINGS)], calendar, store)
    assert (again.unchanged, again.new, again.replaced) == (len(KEPT), 0, 0)


def test_files_that_disagree_are_a_conflict(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    a = write(tmp_path / "a.dbn", RECORDS[:1], MAPPINGS)
    b = write(tmp_path / "b.dbn", [bar(38, ns(DAY1, "09:30"), "234.1", "234.3", "234.05",
                                       "234.2", 4930)], MAPPINGS)  # fmt: skip
    result = run_import(DuckDBStore(":memory:"), [
        bar_job(p, calendar, layout=layout(preset="databento")) for p in (a, b)
    ])  # fmt: skip
    assert not result.committed and result.conflicts == 1
    assert f"{a} line 0" in result.examples[0] and f"{b} line 0" in result.examples[0]


def test_a_file_requested_by_instrument_id_maps_ids_to_symbols(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    by_id = [Mapping("38", [Interval(DAY1, DAY2, "AAPL"), Interval(DAY2, date(2024, 11, 28),
                                                                   "NEWCO")])]  # fmt: skip
    path = write(
        tmp_path / "ids.dbn", [RECORDS[0], RECORDS[3]], by_id, stype_in=dbn.SType.INSTRUMENT_ID
    )
    store = DuckDBStore(":memory:")
    run([path], calendar, store)
    assert [(s, t) for s, t, *_ in stored(store)] == [
        ("AAPL", ns(DAY1, "09:30") // 1000), ("NEWCO", ns(DAY2, "09:30") // 1000)
    ]  # fmt: skip


def test_volume_and_price_bounds_are_the_csv_ones(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    t = [ns(DAY1, f"10:0{i}") for i in range(5)]
    records = [
        bar(38, t[0], "1", "1", "1", "1", 10**14),  # the largest volume taken
        bar(38, t[1], "1", "1", "1", "1", 10**14 + 1),
        bar(38, t[2], "1", "1", "1", "1", 2**64 - 1),  # uint64: never read as negative
        bar(38, t[3], "-1", "1", "-1", "1", 5),
        bar(38, t[4], "10", "9", "8", "9", 5),
    ]
    store = DuckDBStore(":memory:")
    (report,) = run([write(tmp_path / "b.dbn", records, MAPPINGS)], calendar, store)
    assert [(line, reason) for line, reason, _ in report.rejections] == [
        (1, "volume_out_of_range"), (2, "volume_out_of_range"), (3, "non_positive_price"),
        (4, "high_below_open_close"),
    ]  # fmt: skip
    assert store.count_bars() == 1


def test_times_extended_hours_and_zstd_frames(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    """A zstd file of two frames is read whole; --extended keeps 08:00 flagged; a time
    out of range (UNDEF_TIMESTAMP) or off the microsecond is refused with its reason."""
    records = [
        bar(38, ns(DAY1, "08:00"), "233.0", "233.5", "232.9", "233.1", 500),
        bar(38, dbn.UNDEF_TIMESTAMP, "1", "1", "1", "1", 1),
        bar(38, ns(DAY1, "09:30") + 1, "1", "1", "1", "1", 1),
        bar(38, ns(DAY1, "09:30") + 30 * 10**9, "1", "1", "1", "1", 1),
        bar(38, ns(DAY1, "09:31"), "234.25", "234.35", "234.15", "234.2", 3100),
    ]
    data = write(tmp_path / "b.dbn", records, MAPPINGS).read_bytes()
    frames = b""
    for part in (data[:-100], data[-100:]):
        with pa.output_stream(str(tmp_path / "frame"), compression="zstd") as out:
            out.write(part)
        frames += (tmp_path / "frame").read_bytes()
    (tmp_path / "b.dbn.zst").write_bytes(frames)
    store = DuckDBStore(":memory:")
    job = bar_job(tmp_path / "b.dbn.zst", calendar, keep_extended=True,
                  layout=layout(preset="databento"))  # fmt: skip
    result = run_import(store, [job])
    result.raise_on_error()
    assert [(n, r) for n, r, _ in result.reports[0].rejections] == [
        (1, "time_out_of_range"), (2, "not_minute_aligned"), (3, "not_minute_aligned"),
    ]  # fmt: skip
    assert (result.reports[0].new, result.reports[0].extended) == (2, 1)
    batch = store.load_bars(["AAPL"], datetime(2024, 11, 26, tzinfo=UTC),
                            datetime(2024, 11, 27, tzinfo=UTC), regular_only=False)  # fmt: skip
    assert batch.regular.tolist() == [False, True]


def test_prices_are_the_doubles_nearest_the_decimal(tmp_path: Path) -> None:
    """One division rounds once below 2**53; above it the exact integer division is used."""
    rng = random.Random(22)
    counts = [rng.randint(1, 10**18) for _ in range(5000)] + [2**53 + 1, 999_999_999_999_999_999]
    got = to_prices(np.array(counts, dtype=np.int64)).tolist()
    assert got == [float(f"{c // 10**9}.{c % 10**9:09d}") for c in counts]


@pytest.mark.parametrize(
    ("schema", "rtype", "said"),
    [(dbn.Schema.OHLCV_1H, 34, "schema ohlcv-1h: import bars takes ohlcv-1m records"),
     (None, 32, "record 1 is ohlcv-1s (56 bytes): import bars takes ohlcv-1m records")],
)  # fmt: skip
def test_other_bar_lengths_are_refused_naming_them(
    tmp_path: Path, schema: dbn.Schema | None, rtype: int, said: str
) -> None:
    records = [RECORDS[0], bar(38, ns(DAY1, "09:31"), "1", "1", "1", "1", 1, rtype=rtype)]
    path = write(tmp_path / "h.dbn", records, MAPPINGS, schema=schema)
    store = tmp_path / "s.duckdb"
    res = cli_result("import", "bars", path, "--preset", "databento", "--store", store)
    assert res.exit_code == 1
    assert said in error_line(res, "aborted: ")
    assert "nothing was written" in error_line(res, "error: ")


def test_unreadable_files_stop_with_one_line(tmp_path: Path) -> None:
    good = write(tmp_path / "g.dbn", RECORDS[:2], MAPPINGS).read_bytes()
    cases = {
        "cut.dbn": (good[:-10], "record 1 is cut short (46 of 56 bytes): a truncated file"),
        "text.dbn": (b"ticker,open\n", "not a DBN file (it starts with b'ticker,o'"),
    }
    for name, (data, said) in cases.items():
        (tmp_path / name).write_bytes(data)
        res = cli_result("import", "bars", tmp_path / name, "--preset", "databento", "--store",
                         tmp_path / "s.duckdb", "--json")  # fmt: skip
        assert res.exit_code == 1
        (report,) = json.loads(res.stdout)
        assert said in report["error"] and not report["committed"]
    res = cli_result("import", "bars", tmp_path / "g.dbn", "--store", tmp_path / "s.duckdb")
    assert "a Databento DBN file: pass --preset databento" in error_line(res, "aborted: ")
    res = cli_result("import", "bars", tmp_path / "g.dbn", "--preset", "databento", "--symbol",
                     "AAPL", "--store", tmp_path / "s.duckdb")  # fmt: skip
    assert "names its instruments in its metadata; drop --symbol" in error_line(res, "aborted: ")
    res = cli_result("import", "bars", tmp_path / "g.dbn", "--preset", "databento", "--epoch",
                     "ns", "--store", tmp_path / "s.duckdb")  # fmt: skip
    assert res.exit_code == 2 and "drop --columns, --epoch" in error_line(res, "error: ")


def test_a_damaged_zstd_stream_stops_the_file(tmp_path: Path) -> None:
    """Past the first block read (the header's): a damaged frame, a cut-off stream."""
    rec = np.zeros(100_000, dtype=np.dtype(dbn.OHLCVMsg._dtypes))
    rec["length"], rec["rtype"], rec["instrument_id"] = 14, 33, 38
    rec["ts_event"] = ns(DAY1, "09:30")
    for field in ("open", "high", "low", "close"):
        rec[field] = px("100.5")
    rec["volume"] = np.random.default_rng(22).integers(0, 10**12, len(rec))  # hard to compress
    good = write_dbn(tmp_path / "g.dbn.zst", rec.tobytes(), MAPPINGS).read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2 : len(good) // 2 + 40] = b"\xff" * 40
    for name, data in (("damaged.dbn.zst", bytes(damaged)), ("cut.dbn.zst", good[:-20])):
        (tmp_path / name).write_bytes(data)
        res = cli_result("import", "bars", tmp_path / name, "--preset", "databento", "--store",
                         tmp_path / "s.duckdb")  # fmt: skip
        assert res.exit_code == 1, res.output
        assert f"{tmp_path / name}: unreadable DBN file (" in error_line(res, "aborted: ")


def test_chunks_keep_record_indexes(tmp_path: Path, calendar: ExchangeCalendar) -> None:
    """Records are read CHUNK_ROWS at a time; a later chunk's index counts on from the first."""
    from sessionflow.importer import dbn as reader

    path = write(tmp_path / "c.dbn.zst", RECORDS, MAPPINGS)
    report = ImportReport(str(path))
    chunks = list(reader.iter_dbn_file(path, calendar, report, None, False, None, chunk_rows=3))
    assert [len(b) for b, _ in chunks] == [2, 2, 1, 0]
    assert [line for _, lines in chunks for line in lines.tolist()] == [0, 1, 3, 4, 8]
    assert report.rejections == REJECTED


def test_without_the_package_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "g.dbn", RECORDS[:1], MAPPINGS)
    monkeypatch.setitem(sys.modules, "databento_dbn", None)  # import raises ModuleNotFoundError
    res = cli_result("import", "bars", path, "--preset", "databento", "--store",
                     tmp_path / "s.duckdb")  # fmt: skip
    assert res.exit_code == 1
    assert "pip install 'sessionflow[databento]'" in error_line(res, "aborted: ")
