"""LEAN zips checked many at a time give each zip the reports and rows it gets alone.

The importer checks the rows of up to ``BLOCK_ZIPS`` zips of one kind as one block; the
zips here differ in symbol, day (a DST switch week, a half day), kind, bad rows and
line endings, so a decision that leaks from one zip to the next in a block shows up as a
difference from the zip checked on its own.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from sessionflow.importer import ImportError_, lean_jobs
from sessionflow.importer.report import ImportReport
from sessionflow.store import BarBatch, QuoteBatch
from sessionflow.time_provider import ExchangeCalendar

OPEN_MS = 34_200_000  # 09:30 local
MINUTE = 60_000


def trade(ms: int, px: int = 1_000_000, volume: int = 100) -> str:
    return f"{ms},{px},{px + 10_000},{px - 10_000},{px},{volume}"


def quote(ms: int) -> str:
    return f"{ms},1000000,1010000,990000,1000000,5,1010000,1020000,1000000,1010000,7"


def minutes(start: int, n: int) -> list[str]:
    return [trade(OPEN_MS + (start + i) * MINUTE) for i in range(n)]


ZIPS: dict[str, str] = {
    # one symbol, three days (04 Nov: the Monday after a DST switch); the middle one has
    # bad rows and a blank line, the last no final newline
    "aaa/20131101_trade.zip": "\n".join(minutes(0, 5)) + "\n",
    "aaa/20131104_trade.zip": "\n".join(
        [
            *minutes(0, 2),
            "34320000,abc,1,1,1,1",
            "",
            trade(OPEN_MS + 5 * MINUTE, volume=-3),
            *minutes(6, 2),
        ]
    )
    + "\n",
    "aaa/20131105_trade.zip": "\n".join(minutes(0, 3)),
    # a quote zip between trade zips of the same symbol
    "aaa/20131105_quote.zip": "\n".join(quote(OPEN_MS + i * MINUTE) for i in range(4)) + "\n",
    # a second symbol: its first minute is earlier than the first symbol's last
    "bbb/20131101_trade.zip": "\n".join(minutes(0, 4)) + "\r\n",
    # a duplicate and an out-of-order minute within one zip; a row outside the session
    "bbb/20131104_trade.zip": "\n".join(
        [
            *minutes(1, 3),
            trade(OPEN_MS + 3 * MINUTE),
            trade(OPEN_MS),
            trade(3_600_000),
            trade(OPEN_MS + 31_000),
        ]
    )
    + "\n",
    # the Friday after Thanksgiving (13:00 close), a malformed row
    "bbb/20131129_trade.zip": "\n".join([*minutes(209, 3), "1,2,3"]) + "\n",
    # an empty CSV: that zip fails, the others in its block do not
    "bbb/20131203_trade.zip": "",
    "ccc/20131104_trade.zip": "\n".join(minutes(0, 2)) + "\n",
}


def make_root(root: Path) -> Path:
    for name, text in ZIPS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(path.stem + ".csv", text)
    return root


Result = tuple[tuple[object, ...], str | list[object]]


def run_jobs(root: Path, calendar: ExchangeCalendar, block: int) -> dict[str, Result]:
    """Each zip's report and rows after its job ran, in the importer's job order."""
    out: dict[str, Result] = {}
    for job in lean_jobs(root, calendar, block=block):
        rows: str | list[object]
        try:
            rows = [chunk_rows(batch, lines) for batch, lines in job.chunks()]
        except ImportError_ as exc:
            rows = str(exc).replace(str(root), "<root>")
        out[Path(job.report.file).relative_to(root).as_posix()] = (facts(job.report), rows)
    return out


def facts(r: ImportReport) -> tuple[object, ...]:
    return r.rows, r.extended, dict(r.rejected), list(r.rejections)


def chunk_rows(batch: BarBatch | QuoteBatch, lines: np.ndarray) -> list[object]:
    cols = [getattr(batch, name) for name in batch.__dataclass_fields__]
    return [[np.asarray(c).tolist() for c in cols], lines.tolist()]


@pytest.fixture(scope="module")
def alone(
    tmp_path_factory: pytest.TempPathFactory, calendar: ExchangeCalendar
) -> dict[str, Result]:
    return run_jobs(make_root(tmp_path_factory.mktemp("lean")), calendar, block=1)


@pytest.mark.parametrize("block", [2, 3, 256])
def test_zips_checked_in_blocks_match_each_zip_checked_alone(
    tmp_path: Path, calendar: ExchangeCalendar, alone: dict[str, Result], block: int
) -> None:
    assert run_jobs(make_root(tmp_path), calendar, block) == alone


def test_each_zip_keeps_its_own_lines_reasons_and_errors(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    got = run_jobs(make_root(tmp_path), calendar, block=256)
    rows, _, rejected, rejections = got["aaa/20131104_trade.zip"][0]
    assert (rows, rejected) == (6, {"bad_number": 1, "negative_volume": 1})
    assert [(line, reason) for line, reason, _ in rejections] == [
        (3, "bad_number"), (5, "negative_volume"),
    ]  # fmt: skip
    assert got["aaa/20131104_trade.zip"][1][0][1] == [1, 2, 6, 7]  # type: ignore[index]
    assert got["bbb/20131101_trade.zip"][0][:3] == (4, 0, {})
    assert got["bbb/20131104_trade.zip"][0][2] == {
        "duplicate": 1, "out_of_order": 1, "outside_session": 1, "not_minute_aligned": 1,
    }  # fmt: skip
    assert got["bbb/20131129_trade.zip"][0][:3] == (4, 2, {"malformed_row": 1})  # 13:00 close
    assert got["aaa/20131105_trade.zip"][0][0] == 3
    assert got["aaa/20131105_quote.zip"][0][0] == 4
    assert "empty" in str(got["bbb/20131203_trade.zip"][1])
    assert got["ccc/20131104_trade.zip"][0][:3] == (2, 0, {})


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_zip_read_without_zipfile_still_fails_its_crc_and_keeps_its_text(
    tmp_path: Path, calendar: ExchangeCalendar, method: int
) -> None:
    """Plain zips are read straight from their bytes; a damaged one still gets zipfile's error."""
    text = "\n".join(minutes(0, 3)) + "\n"
    path = tmp_path / "aaa" / "20131101_trade.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("20131101_aaa_minute_trade.csv", text)
    got = run_jobs(tmp_path, calendar, block=256)["aaa/20131101_trade.zip"]
    assert got[0][:3] == (3, 0, {})
    raw = bytearray(path.read_bytes())
    if method == zipfile.ZIP_STORED:
        at = raw.index(text.encode())
        raw[at] ^= 1  # 3 -> 2: still a number, a different text
    else:
        crc = raw.index(b"PK\x01\x02") + 16
        raw[crc] ^= 1  # the central directory's CRC no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(ImportError_, match="unreadable zip"):
        for job in lean_jobs(tmp_path, calendar):
            list(job.chunks())
