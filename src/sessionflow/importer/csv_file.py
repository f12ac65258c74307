"""Bar CSVs read in blocks of whole lines, split and checked in columns with numpy.

In a block without quotes, a line with as many commas as the header is one row and its
commas are the cell bounds, so the comma positions of the block's lines, reshaped to
(rows, width - 1), give every cell's span at once; :mod:`sessionflow.importer.columns`
reads the cells of the common layouts from those spans. Every other line (blank, wrong
width) and every row a vectorised check flags goes through :class:`RowChecker.add`
with its physical line number, which gives the reason and text a row-by-row read
gives. A block that a line count cannot map to rows exactly (a quote character, which
may join lines; a bare carriage return, which the csv module counts as a line break; a
NUL; bytes that are not UTF-8; a line over the bound) ends the block reading: the rest
of the file is read row by row by the csv module, with the same checks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np

from sessionflow.importer import _cells
from sessionflow.importer.checker import Candidates, RowChecker, one_minute
from sessionflow.importer.columns import (
    PAD,
    U8,
    Symbols,
    epoch_times,
    formatted_times,
    padded,
    zoned_times,
)
from sessionflow.importer.report import ImportError_
from sessionflow.models import MAX_PRICE, MAX_VOLUME, MIN_PRICE
from sessionflow.store import BarBatch
from sessionflow.store.base import BOOL, F64, I64

BLOCK_BYTES = 1 << 20
COMPRESSED = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_BOM = b"\xef\xbb\xbf"
_PRICES = ("open", "high", "low", "close", "volume")
_CELLS = ("time", "symbol", "open", "high", "low", "close", "volume", "minutes")  # csv_block's

Layout = Callable[[Sequence[str]], tuple[dict[str, int], str | None]]


@dataclass
class _File:
    """One CSV's header layout and where its rows go."""

    path: Path
    check: RowChecker
    col: dict[str, int]
    fixed: str | None
    width: int

    def row(self, line: int, row: list[str]) -> None:
        """One row checked on its own, as the csv module split it."""
        if not row or all(not c.strip() for c in row):
            return
        self.check.report.rows += 1
        if len(row) != self.width:
            detail = f"{len(row)} fields, header has {self.width}"
            self.check.reject(line, "malformed_row", detail)
            return
        col = self.col
        if "minutes" in col:
            one_minute(self.path, line, row[col["minutes"]])
        sym = self.fixed if self.fixed is not None else row[col.get("symbol", 0)]
        self.check.add(line, sym, row[col["time"]], [row[col[n]] for n in _PRICES])


def read_csv(
    path: Path, check: RowChecker, layout: Layout, max_line: int, chunk_rows: int
) -> Iterator[tuple[BarBatch, I64]]:
    """The file's good rows in chunks of about ``chunk_rows``; raises ImportError_.

    A ``.gz`` or ``.zst`` file is read through pyarrow's codec, as it decompresses.
    """
    codec = COMPRESSED.get(path.suffix.lower())
    try:
        yield from _read_csv(path, check, layout, max_line, chunk_rows)
    except (OSError, ValueError) as exc:
        if codec is None or isinstance(exc, ImportError_ | UnicodeDecodeError):
            raise
        raise ImportError_(f"{path}: unreadable {codec} file ({exc})") from exc


def open_bytes(path: Path, skip: int = 0) -> BinaryIO:
    """The file's bytes from offset ``skip``, decompressed if its suffix names a codec."""
    codec = COMPRESSED.get(path.suffix.lower())
    if codec is None:
        fh: BinaryIO = path.open("rb")
        fh.seek(skip)
        return fh
    import pyarrow as pa

    stream: BinaryIO = io.BufferedReader(pa.input_stream(str(path), compression=codec))
    while skip > 0:  # a compressed stream only goes forward
        skip -= len(stream.read(min(skip, BLOCK_BYTES))) or skip
    return stream


def _read_csv(
    path: Path, check: RowChecker, layout: Layout, max_line: int, chunk_rows: int
) -> Iterator[tuple[BarBatch, I64]]:
    with open_bytes(path) as fh:
        head = fh.readline(max_line + 1)
        start = len(head)  # bytes before the first data line (a compressed file cannot tell)
        head = head.removeprefix(_BOM)
        body = head.rstrip(b"\r\n")
        if (not head.endswith(b"\n") or b'"' in head or b"\r" in body or b"\0" in head
                or not body.strip() or len(head) > max_line or not head.isascii()):  # fmt: skip
            yield from _rows_from_start(path, check, layout, max_line, chunk_rows)
            return
        names = body.decode("ascii").split(",")
        col, fixed = layout(names)
        f = _File(path, check, col, fixed, len(names))
        yield from _blocks(f, fh, start, max_line, chunk_rows)


def _rows_from_start(
    path: Path, check: RowChecker, layout: Layout, max_line: int, chunk_rows: int
) -> Iterator[tuple[BarBatch, I64]]:
    with io.TextIOWrapper(open_bytes(path), encoding="utf-8-sig", newline="") as fh:  # no BOM
        reader = csv.reader(bounded_lines(path, fh, max_line))
        header = next(reader, None)
        if header is None:
            raise ImportError_(f"{path}: file has no header")
        col, fixed = layout(header)
        f = _File(path, check, col, fixed, len(header))
        yield from _rows(f, reader, 0, chunk_rows)


def _rows(
    f: _File, reader: Iterator[list[str]], before: int, chunk_rows: int
) -> Iterator[tuple[BarBatch, I64]]:
    """Row by row through the csv module; ``before`` lines precede the reader's first."""
    for row in reader:
        f.row(before + reader.line_num, row)  # type: ignore[attr-defined]
        if f.check.pending >= chunk_rows:
            yield f.check.take()
    yield f.check.take()


def bounded_lines(path: Path, fh: TextIO, limit: int, first: int = 1) -> Iterator[str]:
    """The file's lines, refusing one longer than ``limit`` before it is read whole.

    Iterating a text file reads a line of any length into memory: an 800 MB line
    (a file without line breaks, a wrong file) reached 1.9 GB before ``csv`` refused it.
    """
    number = first - 1
    while line := fh.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise ImportError_(
                f"{path}: line {number} is longer than {limit:,} characters (a bar row is "
                "under 200): not a bar CSV, or a file without line breaks"
            )
        yield line


def _blocks(
    f: _File, fh: BinaryIO, start: int, max_line: int, chunk_rows: int
) -> Iterator[tuple[BarBatch, I64]]:
    pos, line, rest = start, 2, b""
    symbols = Symbols()
    while True:
        data = fh.read(BLOCK_BYTES)
        buf = rest + data
        if not data:
            if not buf:
                break
            block, rest = (buf if buf.endswith(b"\n") else buf + b"\n"), b""
        else:
            cut = buf.rfind(b"\n") + 1
            if cut == 0 and len(buf) <= max_line:
                rest = buf
                continue
            block, rest = buf[:cut], buf[cut:]
        room = max(1, chunk_rows - f.check.pending)
        if block.count(b"\n") > room:  # chunks of chunk_rows rows, as row by row gives
            cut = int(np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)[room - 1]) + 1
            block, rest = block[:cut], block[cut:] + rest
        lines = _block(f, block, line, max_line, symbols) if block else None
        if lines is None:  # the rest of the file row by row, from this block's first line
            with io.TextIOWrapper(open_bytes(f.path, pos), encoding="utf-8", newline="") as text:
                reader = csv.reader(bounded_lines(f.path, text, max_line, line))
                yield from _rows(f, reader, line - 1, chunk_rows)
            return
        pos, line = pos + len(block), line + lines
        if f.check.pending >= chunk_rows:
            yield f.check.take()
    yield f.check.take()


def _block(f: _File, block: bytes, first: int, max_line: int, symbols: Symbols) -> int | None:
    """Check one block of whole lines; its line count, or None to read it row by row."""
    bare_cr = b"\r" in block and block.count(b"\r") != block.count(b"\r\n")
    if b'"' in block or b"\0" in block or bare_cr:
        return None
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    n = block.count(b"\n")
    ints = np.zeros((n, 7), dtype=np.int64)  # line start, end, time start, end, time, volume, code
    prices = np.empty((n, 4), dtype=np.float64)
    flags = np.zeros((n, 2), dtype=np.uint8)  # read, the time's kind
    col = f.col
    at = np.array([col.get(k, -1) for k in _CELLS], dtype=np.int64)
    iso = f.check.time_format is None and f.check.epoch is None
    got = _cells.csv_block(block, f.width, at, iso, max_line, MAX_VOLUME, PAD, symbols.codes,
                           symbols.names, ints, prices, flags)  # fmt: skip
    if got < 0:
        return None
    read = flags[:, 0].astype(np.bool_)
    rows = np.flatnonzero(read)
    if len(rows):
        clean = _columns(f, block, ints[rows], prices[rows], flags[rows, 1], first + rows, symbols)
        read[rows[~clean]] = False
    for i in np.flatnonzero(~read).tolist():
        cells = block[ints[i, 0] : ints[i, 1]].decode("utf-8").removesuffix("\r")
        f.row(first + i, cells.split(",") if cells else [])
    return n


def _columns(
    f: _File, block: bytes, ints: I64, prices: F64, kind: U8, lines: I64, symbols: Symbols
) -> BOOL:
    """Check a block's rows that the compiled reader read; the rows that passed.

    ``ints``, ``prices`` and ``kind`` are :func:`_cells.csv_block`'s, for these rows.
    """
    check = f.check
    n = len(lines)
    if check.time_format is not None:
        us, bad = formatted_times(padded(block), ints[:, 2] + PAD, ints[:, 3] + PAD,
                                  check.formatted)  # fmt: skip
    elif check.epoch is not None:
        us, bad = epoch_times(padded(block), ints[:, 2] + PAD, ints[:, 3] + PAD, check.epoch)
    else:
        us, bad = zoned_times(ints[:, 4].copy(), kind, check.tz)
    us -= check.shift_us
    o, h, lo, c = prices.T
    volume = ints[:, 5]
    bad |= ~((np.minimum(np.minimum(o, h), np.minimum(lo, c)) >= MIN_PRICE)
             & (np.maximum(np.maximum(o, h), np.maximum(lo, c)) <= MAX_PRICE)
             & (lo <= np.minimum(o, c)) & (h >= np.maximum(o, c)))  # fmt: skip
    bad |= (us % 60_000_000 != 0) | (us > check.latest_open_us)
    if f.fixed is not None:
        sym = np.full(n, f.fixed, dtype=object)
    else:
        sym, bad_symbol = symbols.resolve(ints[:, 6])
        bad |= bad_symbol
    clean = ~bad
    check.report.rows += int(clean.sum())
    check.add_columns(
        Candidates(lines[clean], sym[clean], us[clean], o[clean], h[clean], lo[clean],
                   c[clean], volume[clean], np.zeros(int(clean.sum()), dtype=np.bool_))
    )  # fmt: skip
    return clean
