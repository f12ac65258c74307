"""The vectorised cell readers agree with the per-row ones on every cell they take.

Issue 23 item 1: CSV imports read cells in columns; a cell the plain grammar takes
must give the value ``float``/``int``/``parse_time`` give, and any other cell must be
left to the per-row path (which gives the reason), never read another way.
"""

from __future__ import annotations

import random
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from sessionflow.importer import ImportReport, _cells, bars, csv_file, iter_bar_file
from sessionflow.importer.columns import (
    PAD,
    Symbols,
    epoch_times,
    iso_times,
    padded,
    plain_integers,
    plain_numbers,
)
from sessionflow.importer.sequence import Accepted
from sessionflow.importer.validate import NaiveTime, RowProblem, parse_time
from sessionflow.time_provider import ExchangeCalendar

ODD_NUMBERS = ["1.", ".5", "1..2", "", "1e5", "-1", "+2", "1_0", " 1", "1 ", "0.000", "00012.50",
               "123456789012345678", "1234567890123456", "9.99999999999999", "1.2.3", "١٢",
               "nan", "inf", "0x10", "12.", "7"]  # fmt: skip


def spans(cells: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = ",".join(cells).encode()
    start, pos = [], 0
    for c in cells:
        start.append(pos)
        pos += len(c.encode()) + 1
    s = np.array(start, dtype=np.int64) + PAD
    e = s + np.array([len(c.encode()) for c in cells], dtype=np.int64)
    return padded(raw), s, e


def random_numbers(n: int) -> list[str]:
    rng = random.Random(23)
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.4:
            out.append(str(rng.randint(0, 10 ** rng.randint(1, 17))))
        elif k < 0.8:
            whole, frac = rng.randint(0, 10 ** rng.randint(0, 9)), rng.randint(0, 10**7)
            out.append(f"{whole}.{frac:0{rng.randint(1, 7)}d}"[: rng.randint(3, 17)])
        else:
            out.append(rng.choice(ODD_NUMBERS))
    return out


def test_plain_numbers_read_what_float_reads_and_leave_the_rest() -> None:
    cells = random_numbers(20_000)
    values, unread = plain_numbers(*spans(cells))
    taken = 0
    for cell, value, left in zip(cells, values.tolist(), unread.tolist(), strict=True):
        if not left:
            assert value == float(cell), cell
            taken += 1
    assert taken > 10_000
    for odd in ("1e5", "-1", "+2", "1_0", " 1", "nan", "١٢", "1.2.3", "", "1."):
        assert unread[cells.index(odd)], odd  # left to the per-row path and its reason


def test_plain_integers_read_what_int_reads_within_the_limit() -> None:
    cells = random_numbers(20_000)
    values, unread = plain_integers(*spans([*cells, "9000000000000000000"]), limit=10**19)
    assert unread[-1]  # above 9 * 10**18: not read here
    values, unread = plain_integers(*spans(cells), limit=10**15)
    for cell, value, left in zip(cells, values.tolist(), unread.tolist(), strict=True):
        if not left:
            assert value == int(cell) <= 10**15, cell
    assert unread[cells.index("1234567890123456")]  # above the limit: the per-row reason


def random_times(n: int) -> list[str]:
    rng = random.Random(5)
    out = []
    for _ in range(n):
        y, mo, d = rng.randint(1969, 2101), rng.randint(0, 13), rng.randint(0, 32)
        h, mi, s = rng.randint(0, 24), rng.randint(0, 60), rng.randint(0, 60)
        sep = rng.choice("T T_")
        zone = rng.choice(["", "Z", "+05:30", "-04:00", "+24:00", "-00:00", "+0100", ".5"])
        text = f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}"
        out.append(text if rng.random() < 0.1 else f"{text}:{s:02d}{zone}")
    return [*out, "2024-02-29T09:30:00Z", "2023-02-29T09:30:00Z", "2024-03-10T02:30:00"]


@pytest.mark.parametrize("tz", [None, ZoneInfo("America/New_York")], ids=["no_tz", "tz"])
def test_iso_times_read_what_parse_time_reads(tz: ZoneInfo | None) -> None:
    cells = random_times(20_000)
    us, unread = iso_times(*spans(cells), tz)
    taken = 0
    for cell, value, left in zip(cells, us.tolist(), unread.tolist(), strict=True):
        try:
            want: int | None = parse_time(cell, tz)
        except (RowProblem, NaiveTime):
            want = None
        if not left:
            assert value == want, cell
            taken += 1
    assert taken > 1_000
    assert unread[cells.index("2023-02-29T09:30:00Z")]


def test_epoch_times_keep_the_unit_and_leave_sub_microseconds() -> None:
    cells = ["1732890600", "1732890600000", "1732890600000001", "-5", "99999999999999999"]
    us, unread = epoch_times(*spans(cells), "s")
    assert us[0] == 1_732_890_600_000_000 and not unread[0]
    assert unread[1:].all()  # past 2100 in seconds, a sign: the per-row reasons
    us, unread = epoch_times(*spans(["1732890600000000001", "1732890600000001000"]), "ns")
    assert unread[0] and not unread[1] and us[1] == 1_732_890_600_000_001


def test_symbols_are_normalised_once_and_bad_ones_left() -> None:
    cells = [" aapl", "AAPL", "a b", "", "msft", "x" * 40]
    names, unread = Symbols().read(*spans(cells))
    assert names[:2].tolist() == ["AAPL", "AAPL"] and names[4] == "MSFT"
    assert unread.tolist() == [False, False, True, True, False, True]


def messy_csv(path: Path, rows: int, seed: int) -> None:
    """Good rows of three symbols mixed with every kind of bad one, CRLF and blank lines."""
    rng = random.Random(seed)
    stamps = [f"2024-11-26T{h:02d}:{m:02d}:00-05:00" for h in range(3, 21) for m in range(60)]
    odd = ["nan", "1e2", " 10", "-3", "1_0", "x", "", "10.5.1", "9" * 20]
    lines = ["symbol,timestamp,open,high,low,close,volume"]
    for _ in range(rows):
        k = rng.random()
        i = len(lines)
        sym = ["aapl", "MSFT", " ibm "][i % 3] if k > 0.03 else rng.choice(["A B", "ibm"])
        back = rng.randint(0, 3) if k < 0.1 else 0  # a duplicate or out of order
        ts = stamps[max(0, min(len(stamps) - 1, i // 3 - back))]
        o, h, lo, c = 10.25, 11.5, 9.75, 10.5
        cells = [sym, ts, str(o), str(h), str(lo), str(c), str(rng.randint(0, 5000))]
        if k > 0.9:
            cells[rng.randint(2, 6)] = rng.choice(odd)
        elif k > 0.85:
            cells[1] = rng.choice(
                [
                    "2024-11-26 09:31:00",
                    "2024-11-26T09:31",
                    "2024-11-26T09:31:00.5Z",
                    "2024-11-26T14:31:00Z",
                    "2024-11-23T10:00:00-05:00",
                ]
            )
        elif k > 0.82:
            cells = cells[:5]
        line = ",".join(cells)
        lines.append(line + ("\r" if k < 0.05 else ""))
        if k > 0.98:
            lines.append(rng.choice(["", "  ", ",,,,,,"]))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("keep_extended", [False, True], ids=["regular", "extended"])
def test_block_reading_reports_what_row_by_row_reading_reports(
    tmp_path: Path, calendar: ExchangeCalendar, monkeypatch: pytest.MonkeyPatch,
    keep_extended: bool,
) -> None:  # fmt: skip
    path = tmp_path / "messy.csv"
    messy_csv(path, 3_000, seed=7)
    tz = ZoneInfo("America/New_York")
    monkeypatch.setattr(csv_file, "BLOCK_BYTES", 20_000)  # many blocks, lines cut across reads
    monkeypatch.setattr(bars, "CHUNK_ROWS", 1_000)

    def read() -> tuple[list[tuple[object, ...]], dict[str, object]]:
        report = ImportReport(str(path))
        got: list[tuple[object, ...]] = []
        for b, lines in iter_bar_file(path, calendar, report, None, keep_extended, tz):
            cols = (lines, b.symbol, b.ts_us, b.open, b.volume, b.regular)
            got += zip(*(c.tolist() for c in cols), strict=True)
        return got, report.to_dict()

    fast_rows, fast = read()
    monkeypatch.setattr(csv_file, "_block", lambda *a: None)  # every block row by row
    slow_rows, slow = read()
    assert fast == slow
    assert fast_rows == slow_rows
    assert len(fast_rows) > 500 and len(fast["rejections"]) > 300  # type: ignore[arg-type]


def test_accepted_minutes_decide_across_chunks() -> None:
    minute = 60_000_000
    seen = Accepted()
    syms = np.array(["A", "A", "A", "A", "B"], dtype=object)
    ok, dup = seen.decide(syms, np.array([0, 1, 2, 5, 0]) * minute)  # A: runs 0-2 and 5
    assert ok.all() and not dup.any()
    syms = np.array(["A", "A", "A", "A", "B", "A"], dtype=object)
    ok, dup = seen.decide(syms, np.array([5, 1, 3, 6, 0, 6]) * minute)
    assert ok.tolist() == [False, False, False, True, False, False]
    assert dup.tolist() == [True, True, False, False, True, True]  # 3 was never accepted


def test_compiled_block_reads_each_cell_from_its_column() -> None:
    """A swapped column would mostly fail the price checks and be read again row by row,
    giving the right bar anyway: so the compiled reader's own output is checked here."""
    rng = random.Random(11)
    order = ["volume", "close", "symbol", "low", "timestamp", "open", "high"]
    rows, lines = [], []
    for i in range(500):
        want = {"open": rng.randint(1, 10**6) / 100, "high": rng.randint(1, 10**6) / 100,
                "low": rng.randint(1, 10**6) / 100, "close": rng.randint(1, 10**6) / 100,
                "volume": rng.randint(0, 10**9), "symbol": rng.choice(["AAPL", "ibm", "X.Y"]),
                "timestamp": f"2024-11-26T{10 + i // 60:02d}:{i % 60:02d}:00-05:00"}  # fmt: skip
        rows.append(want)
        end = "\r\n" if i % 3 == 0 else "\n"
        lines.append(",".join(str(want[k]) for k in order) + end)
    block = "".join(lines).encode()
    n = len(rows)
    ints = np.zeros((n, 7), dtype=np.int64)
    prices = np.empty((n, 4), dtype=np.float64)
    flags = np.zeros((n, 2), dtype=np.uint8)
    at = np.array([order.index(k) if k in order else -1 for k in (
        "timestamp", "symbol", "open", "high", "low", "close", "volume", "minutes")])  # fmt: skip
    codes: dict[bytes, int] = {}
    names: list[bytes] = []
    got = _cells.csv_block(block, len(order), at, True, 1000, 10**15, PAD, codes, names, ints,
                           prices, flags)  # fmt: skip
    assert got == n and flags[:, 0].all()
    assert prices.tolist() == [[r[k] for k in ("open", "high", "low", "close")] for r in rows]
    assert ints[:, 5].tolist() == [r["volume"] for r in rows]
    assert [names[c].decode() for c in ints[:, 6]] == [r["symbol"] for r in rows]
    assert ints[:, 4].tolist() == [parse_time(str(r["timestamp"]), None) for r in rows]
    text = [block[a:b].decode() for a, b in ints[:, :2].tolist()]
    assert text == [line.removesuffix("\n") for line in lines]
