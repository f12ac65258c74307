"""Import QuantConnect LEAN minute zips: ``<symbol>/<yyyymmdd>_trade.zip`` and ``_quote.zip``.

LEAN stamps each row with milliseconds since *local* midnight of the date in the
file name (the bar's open) and stores prices as integers x 10,000. Rows outside
the regular session but inside 04:00-20:00 are kept with ``regular=False`` so
replay can include extended hours; every other row goes through the same checks,
reasons and line numbers as :mod:`sessionflow.importer.bars`. All files are read
and validated before anything is written, so a corrupt zip leaves the store
unchanged; each file is then one MERGE (one transaction), so re-imports are no-ops.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.importer import _cells
from sessionflow.importer.bars import ImportError_, ImportReport
from sessionflow.importer.command import Job, run_import
from sessionflow.importer.sequence import Accepted
from sessionflow.importer.validate import RowProblem, latest_bar_open_us, parse_number
from sessionflow.models import (
    MAX_PRICE,
    MAX_VOLUME,
    MIN_PRICE,
    SymbolError,
    from_us,
    normalize_symbol,
    price_problem,
    to_us,
)
from sessionflow.store import BarBatch, QuoteBatch, Store
from sessionflow.store.base import BOOL, F64, I64, OBJ
from sessionflow.time_provider import ExchangeCalendar

_NAME = re.compile(r"^(\d{8})_(trade|quote)\.zip$")
_WIDTH = {"trade": 6, "quote": 11}
_PRICE_SCALE = 10_000.0
_DAY_MS = 86_400_000
MAX_MEMBER_BYTES = 16 * 1024 * 1024  # a minute file holds at most 1,440 rows (~0.15 MB)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
               NotImplementedError, RuntimeError)  # fmt: skip


@dataclass(frozen=True)
class LeanFile:
    """One zip: its symbol (normalised folder name), local trading date and kind."""

    path: Path
    symbol: str
    day: date
    kind: str  # "trade" or "quote"


def _lean_hint(directory: Path, depth: int = 4) -> str:
    """Where zips were found deeper down (a parent folder was given), or what to give."""
    for root, dirs, names in os.walk(directory):
        here = Path(root)
        if len(here.relative_to(directory).parts) >= depth:
            dirs.clear()
        if any(_NAME.match(n) for n in names):
            return f"found some in {here}: import its parent, {here.parent}"
        dirs.sort()
    return "give the LEAN minute root (its symbol folders hold the zips) or one symbol folder"


def lean_files(directory: Path) -> list[LeanFile]:
    """The zips of one symbol folder, or of every symbol folder under a LEAN root."""
    if not directory.is_dir():
        raise ImportError_(f"{directory}: no such directory")
    found = _zips(directory)
    if not found:
        subdirs = sorted(p for p in directory.iterdir() if p.is_dir())
        found = [f for sub in subdirs for f in _zips(sub)]
    if not found:
        raise ImportError_(
            f"{directory}: no LEAN <yyyymmdd>_trade.zip / _quote.zip files in it or its "
            f"symbol folders; {_lean_hint(directory)}"
        )
    return found


def _zips(folder: Path) -> list[LeanFile]:
    out = []
    for path in sorted(folder.iterdir()):
        m = _NAME.match(path.name)
        if m is None or not path.is_file():
            continue
        try:
            symbol = normalize_symbol(folder.name)
        except SymbolError as exc:
            raise ImportError_(
                f"{folder}: bad_symbol: the folder name is not a symbol ({exc})"
            ) from None
        try:
            day = datetime.strptime(m[1], "%Y%m%d").date()
        except ValueError:
            raise ImportError_(f"{path}: {m[1]} in the file name is not a date") from None
        out.append(LeanFile(path, symbol, day, m[2]))
    return out


def _zip_source(path: Path, limit: int) -> Path | io.BytesIO:
    """A zip no larger than the member limit, read in one call (zipfile's own seeks and
    small reads were most of a minute zip's time); a larger one stays on disk."""
    if path.stat().st_size > limit:
        return path
    return io.BytesIO(path.read_bytes())


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory, no comment
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # one central directory entry
_LOCAL = struct.Struct("<4s5H3L2H")  # the member's local header


def _plain_member(raw: bytes, limit: int) -> bytes | None:
    """The one ``.csv`` member of a plain zip (no comment, deflated or stored, CRC right).

    zipfile's objects were a third of a minute zip's time; anything else (a second
    member, a comment, encryption, a size or CRC that does not match, more than
    ``limit`` bytes) returns None and goes through zipfile, which names the problem.
    """
    if len(raw) < _EOCD.size + _CENTRAL.size + _LOCAL.size:
        return None
    sig, disk, cd_disk, here, total, cd_size, cd_at, comment = _EOCD.unpack_from(raw, len(raw) - 22)
    if (sig, disk, cd_disk, here, total, comment) != (b"PK\x05\x06", 0, 0, 1, 1, 0):
        return None
    if cd_at + cd_size != len(raw) - 22 or cd_size < _CENTRAL.size:
        return None
    (sig, _, _, flags, method, _, _, crc, size, full, n_name, n_extra, n_comment, _, _, _,
     at) = _CENTRAL.unpack_from(raw, cd_at)  # fmt: skip
    name = raw[cd_at + _CENTRAL.size : cd_at + _CENTRAL.size + n_name]
    if sig != b"PK\x01\x02" or flags & 0x49 or method not in (0, 8) or full > limit:
        return None  # encrypted, a data descriptor, patched data, or another method
    if (
        not name.lower().endswith(b".csv")
        or at != 0
        or _CENTRAL.size + n_name + n_extra + n_comment != cd_size
    ):
        return None
    lsig, _, _, _, _, _, _, _, _, l_name, l_extra = _LOCAL.unpack_from(raw, 0)
    start = _LOCAL.size + l_name + l_extra
    if (
        lsig != b"PK\x03\x04"
        or start + size > cd_at
        or raw[_LOCAL.size : _LOCAL.size + l_name] != name
    ):
        return None
    packed = raw[start : start + size]
    try:
        data = packed if method == 0 else zlib.decompressobj(-15).decompress(packed, limit + 1)
    except zlib.error:
        return None
    if len(data) != full or zlib.crc32(data) != crc:
        return None
    return data


def _csv_text(path: Path, limit: int = MAX_MEMBER_BYTES) -> str:
    try:
        data = _plain_member(path.read_bytes(), limit) if path.stat().st_size <= limit else None
    except OSError:
        data = None  # zipfile below names the problem
    if data is not None:
        return _decode(path, data)
    try:
        with zipfile.ZipFile(_zip_source(path, limit)) as zf:
            csvs = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
            if len(csvs) != 1:
                raise ImportError_(f"{path}: expected one CSV inside the zip, found {len(csvs)}")
            size = csvs[0].file_size
            data = b""
            if size <= limit:  # the header can lie: read at most limit + 1 bytes anyway
                with zf.open(csvs[0]) as fh:
                    data = fh.read(limit + 1)
                size = max(size, len(data))
            if size > limit:
                raise ImportError_(
                    f"{path}: {csvs[0].filename} expands to {size:,} bytes or more (the zip is "
                    f"{path.stat().st_size:,} bytes), above the limit of {limit:,} bytes "
                    "(--max-unzipped-mb, setting import_max_unzipped_mb)"
                )
    except _ZIP_ERRORS as exc:
        raise ImportError_(f"{path}: unreadable zip ({exc})") from exc
    return _decode(path, data)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a byte order mark is not part of the first row
    except UnicodeDecodeError as exc:
        raise ImportError_(f"{path}: CSV is not UTF-8 text ({exc.reason})") from exc


def local_ms_to_us(day: date, ms: I64, tz: ZoneInfo) -> I64:
    """Epoch microseconds (UTC) of local wall-clock ``day`` 00:00 + ``ms``, DST-correct."""
    midnight = datetime.combine(day, time(0), tz)
    if midnight.utcoffset() == datetime.combine(day, time(23, 59), tz).utcoffset():
        return to_us(midnight) + ms.astype(np.int64) * 1000
    naive = datetime.combine(day, time(0))  # a DST switch day: convert row by row
    return np.array(
        [to_us((naive + timedelta(milliseconds=int(m))).replace(tzinfo=tz)) for m in ms],
        dtype=np.int64,
    )


@dataclass
class _Rows:
    """A block's non-blank rows of the right width (one zip or many), a reason per row."""

    file: I64  # the row's zip, an index into the block's files
    lines: I64  # the row's physical line in its zip's CSV
    values: F64  # (n, width), NaN where a cell is not a number
    unparsable: BOOL  # a price or size cell is not a number
    reason: OBJ  # "" while the row is still good
    good: BOOL  # reason == "", kept beside it (compared once per check, it was a tenth)

    def reject(self, mask: BOOL, reason: str) -> None:
        """Refuse the rows of ``mask`` not refused yet, for ``reason``."""
        hit = mask & self.good
        if hit.any():
            self.reason[hit] = reason
            self.good &= ~hit

    def refuse(self, index: I64 | int, reason: str) -> None:
        """Refuse the rows at ``index`` (still good), for ``reason``."""
        self.reason[index] = reason
        self.good[index] = False


def _plain_rows(block: bytes, width: int) -> tuple[BOOL, F64]:
    """Per physical line: all ``width`` cells in the plain number grammar, and their values.

    One compiled pass (:func:`_cells.number_rows`, the grammar of
    :mod:`sessionflow.importer.columns`); other lines are left unread (NaN).
    """
    n = block.count(b"\n")
    values = np.full((n, width), np.nan)
    plain = np.zeros(n, dtype=np.uint8)
    _cells.number_rows(block, values, plain)
    values[plain == 0] = np.nan  # a line read part way holds its first cells
    return plain.astype(np.bool_), values


def _odd_lines(
    source: list[str], plain: BOOL, values: F64, width: int, report: ImportReport
) -> tuple[BOOL, BOOL]:
    """The lines the compiled pass left (blank, malformed or odd), one by one, as before."""
    keep = plain.copy()
    unparsable = np.zeros(len(source), dtype=np.bool_)
    report.rows += int(plain.sum())
    for i in np.flatnonzero(~plain).tolist():
        line = source[i].rstrip("\r")
        if not line.strip():
            continue
        report.rows += 1
        fields = line.count(",") + 1
        if fields != width:
            report.reject(i + 1, "malformed_row", f"{fields} fields, a LEAN row here has {width}")
            continue
        keep[i] = True
        for j, cell in enumerate(line.split(",")):
            try:
                values[i, j] = parse_number("cell", cell)
            except RowProblem:
                values[i, j] = np.nan
                unparsable[i] |= j > 0
    return keep, unparsable


def _parse_block(
    files: list[LeanFile], texts: list[str], reports: list[ImportReport]
) -> tuple[_Rows, list[ImportError_ | None]]:
    """The rows of many zips of one kind, read by one compiled pass over their joined text.

    A zip whose CSV is empty or has no row of the right width gets its error (the other
    zips' rows are kept); line numbers stay each zip's own.
    """
    width = _WIDTH[files[0].kind]
    parts = [t.encode("utf-8") + b"\n" for t in texts]
    counts = [p.count(b"\n") for p in parts]
    plain, values = _plain_rows(b"".join(parts), width)
    keep = np.zeros(len(plain), dtype=np.bool_)
    unparsable = np.zeros(len(plain), dtype=np.bool_)
    errors: list[ImportError_ | None] = []
    at = 0
    for f, text, n, report in zip(files, texts, counts, reports, strict=True):
        here = slice(at, at + n)
        at += n
        mine = plain[here]
        if mine[:-1].all() and (mine[-1] or text.endswith("\n")):  # the usual zip
            keep[here] = mine  # every line plain but the blank one after the last newline
            report.rows += int(mine[-1]) + n - 1
        else:
            keep[here], unparsable[here] = _odd_lines(
                text.split("\n"), plain[here], values[here], width, report
            )
        error = None
        if report.rows == 0:
            error = ImportError_(f"{f.path}: the CSV inside is empty")
        elif not keep[here].any():
            error = ImportError_(f"{f.path}: no row has the {width} fields of this LEAN file kind")
        errors.append(error)
    starts = np.cumsum([0, *counts[:-1]])
    file = np.repeat(np.arange(len(files), dtype=np.int64), counts)
    index = np.flatnonzero(keep)
    lines = (index - starts[file[index]] + 1).astype(np.int64)
    n_rows = len(index)
    rows = _Rows(file[index], lines, values[index], unparsable[index],
                 np.full(n_rows, "", dtype=object), np.ones(n_rows, np.bool_))  # fmt: skip
    return rows, errors


def _check_prices(rows: _Rows, cols: tuple[int, int, int, int, int]) -> None:
    """Vectorised fast path; rows it flags get their reason from ``price_problem`` itself."""
    o, h, lo, c = (rows.values[:, j] / _PRICE_SCALE for j in cols[:4])
    v = rows.values[:, cols[4]]
    ok = (np.isfinite(rows.values[:, list(cols)]).all(axis=1) & (h >= lo)
          & (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c)) & (v >= 0)
          & (np.minimum(np.minimum(o, h), np.minimum(lo, c)) >= MIN_PRICE)
          & (np.maximum(np.maximum(o, h), np.maximum(lo, c)) <= MAX_PRICE)
          & (v <= MAX_VOLUME))  # fmt: skip
    for i in np.flatnonzero(~ok & rows.good).tolist():
        problem = price_problem(o[i], h[i], lo[i], c[i], v[i])
        rows.refuse(i, problem or "bad_number")
    whole = np.isfinite(v) & (v == np.floor(v)) & (np.abs(v) < 2.0**63)
    rows.reject(~whole, "bad_number")


def _check_sequence(rows: _Rows, ts_us: I64) -> None:
    """Duplicates and out-of-order minutes within each zip, as the CSV importer decides them."""
    good = np.flatnonzero(rows.good)
    file = rows.file[good]
    step_back = (np.diff(ts_us[good]) <= 0) & (file[1:] == file[:-1])
    for k in np.unique(file[1:][step_back]).tolist():  # usually none: minutes increase
        mine = good[file == k]
        accepted, duplicate = Accepted().decide(np.full(len(mine), "", dtype=object), ts_us[mine])
        rows.refuse(mine[duplicate], "duplicate")
        rows.refuse(mine[~accepted & ~duplicate], "out_of_order")


def read_lean_file(
    f: LeanFile, calendar: ExchangeCalendar, max_member_bytes: int = MAX_MEMBER_BYTES
) -> tuple[BarBatch | QuoteBatch, ImportReport]:
    """Parse and validate one zip; returns the good rows and the report. Writes nothing."""
    report = ImportReport(str(f.path))
    batch, _ = check_lean_file(f, calendar, report, max_member_bytes)
    report.imported = len(batch)
    return batch, report


class SessionDays:
    """Each trading day's regular and extended bounds (epoch us), looked up once per import.

    A LEAN import reads one zip per symbol and day, so the same day comes back once per
    symbol; the calendar lookup was a tenth of a zip's time.
    """

    def __init__(self, calendar: ExchangeCalendar) -> None:
        self.calendar = calendar
        self._days: dict[date, tuple[int, int, int, int] | None] = {}

    def bounds(self, day: date) -> tuple[int, int, int, int] | None:
        """(open, close, extended open, extended close) of ``day``'s session, or None."""
        if day not in self._days:
            cal = self.calendar
            info = cal.session_of(datetime.combine(day, time(12), cal.tz))
            got = None
            if info is not None:
                ext_open, ext_close = cal.extended_bounds(info)
                got = (to_us(info.open), to_us(info.close), to_us(ext_open), to_us(ext_close))
            self._days[day] = got
        return self._days[day]


def check_lean_file(
    f: LeanFile,
    calendar: ExchangeCalendar,
    report: ImportReport,
    max_member_bytes: int,
    days: SessionDays | None = None,
) -> tuple[BarBatch | QuoteBatch, I64]:
    """The good rows of one zip and their lines, filling ``report``."""
    (got,) = check_lean_files([f], calendar, [report], max_member_bytes, days)
    if isinstance(got, ImportError_):
        raise got
    return got


Checked = tuple[BarBatch | QuoteBatch, I64] | ImportError_


def check_lean_files(
    files: list[LeanFile],
    calendar: ExchangeCalendar,
    reports: list[ImportReport],
    max_member_bytes: int,
    days: SessionDays | None = None,
) -> list[Checked]:
    """Per zip (all of one kind): its good rows and their lines, or the error that stops it.

    The zips' rows are checked as one block (one set of numpy calls for hundreds of zips:
    per zip they cost about 0.5 ms on 390 rows); each row keeps its zip's line number,
    reason and report.
    """
    out: list[Checked | None] = [None] * len(files)
    texts: list[str] = []
    read: list[int] = []
    for k, f in enumerate(files):
        try:
            texts.append(_csv_text(f.path, max_member_bytes))
            read.append(k)
        except ImportError_ as exc:
            out[k] = exc
    if read:
        block = [files[k] for k in read]
        for k, got in zip(read, _check_block(block, texts, [reports[k] for k in read],
                                             calendar, days or SessionDays(calendar)),
                          strict=True):  # fmt: skip
            out[k] = got
    return [got for got in out if got is not None]


def _check_block(
    files: list[LeanFile],
    texts: list[str],
    reports: list[ImportReport],
    calendar: ExchangeCalendar,
    days: SessionDays,
) -> list[Checked]:
    rows, errors = _parse_block(files, texts, reports)
    ms = rows.values[:, 0]
    rows.reject(~(np.isfinite(ms) & (ms == np.floor(ms)) & (ms >= 0) & (ms < _DAY_MS)),
                "unparsable_time")  # fmt: skip
    rows.reject(rows.unparsable, "bad_number")
    kind = files[0].kind
    for cols in ((1, 2, 3, 4, 5),) if kind == "trade" else ((1, 2, 3, 4, 5), (6, 7, 8, 9, 10)):
        _check_prices(rows, cols)
    ms_int = np.where(rows.good, ms, 0).astype(np.int64)
    rows.reject(ms_int % 60_000 != 0, "not_minute_aligned")
    ts_us = _block_us(files, rows.file, ms_int, calendar.tz)
    rows.reject(ts_us > latest_bar_open_us(), "from_future")
    regular, extended = _classify(files, rows.file, ts_us, days)
    rows.reject(~(regular | extended), "outside_session")
    _check_sequence(rows, ts_us)
    sources: dict[int, list[str]] = {}
    for i in np.flatnonzero(~rows.good).tolist():
        k = int(rows.file[i])
        if rows.reason[i] in ("outside_session", "duplicate", "out_of_order", "from_future"):
            detail = from_us(int(ts_us[i])).astimezone(calendar.tz).isoformat()
        else:
            source = sources.setdefault(k, texts[k].split("\n"))
            detail = source[int(rows.lines[i]) - 1].rstrip("\r")
        reports[k].reject(int(rows.lines[i]), str(rows.reason[i]), detail)
    keep = rows.good
    symbols = np.array([f.symbol for f in files], dtype=object)[rows.file]
    ends = np.searchsorted(rows.file, np.arange(len(files) + 1))
    out: list[Checked] = []
    for k, f in enumerate(files):
        error = errors[k]
        if error is not None:
            out.append(error)
            continue
        reports[k].rejections.sort()
        mine = slice(int(ends[k]), int(ends[k + 1]))
        good = keep[mine]
        reports[k].extended = int((good & extended[mine]).sum())
        values, stamps, regular_here = rows.values[mine][good], ts_us[mine], regular[mine]
        batch = _batch(f.kind, symbols[mine][good], values, stamps[good], regular_here[good])
        out.append((batch, rows.lines[mine][good]))
    return out


def _block_us(files: list[LeanFile], file: I64, ms: I64, tz: ZoneInfo) -> I64:
    """Epoch microseconds of each row: its zip's local midnight plus ``ms`` (DST-correct)."""
    midnight = np.zeros(len(files), dtype=np.int64)
    switch = []
    for k, f in enumerate(files):
        start = datetime.combine(f.day, time(0), tz)
        midnight[k] = to_us(start)
        if start.utcoffset() != datetime.combine(f.day, time(23, 59), tz).utcoffset():
            switch.append(k)
    ts_us = midnight[file] + ms * 1000
    for k in switch:  # a DST switch day: row by row
        mine = file == k
        ts_us[mine] = local_ms_to_us(files[k].day, ms[mine], tz)
    return ts_us


def _classify(files: list[LeanFile], file: I64, ts_us: I64, days: SessionDays) -> tuple[BOOL, BOOL]:
    """Per row: in the regular session, or in 04:00-20:00 of that session day but not regular."""
    bounds = np.zeros((len(files), 4), dtype=np.int64)  # no session: every range empty
    for k, f in enumerate(files):
        got = days.bounds(f.day)
        if got is not None:
            bounds[k] = got
    open_us, close_us, ext_open, ext_close = (bounds[file, j] for j in range(4))
    regular = (ts_us >= open_us) & (ts_us < close_us)
    extended = (ts_us >= ext_open) & (ts_us < ext_close) & ~regular
    return regular, extended


def _batch(kind: str, symbol: OBJ, v: F64, ts_us: I64, regular: BOOL) -> BarBatch | QuoteBatch:
    if kind == "trade":
        o, h, lo, c = (v[:, j] / _PRICE_SCALE for j in range(1, 5))
        return BarBatch(symbol, ts_us, o, h, lo, c, v[:, 5].astype(np.int64), regular)
    return QuoteBatch(
        symbol=symbol,
        ts_us=ts_us,
        bid=v[:, 1:5] / _PRICE_SCALE,
        bid_size=v[:, 5].astype(np.int64),
        ask=v[:, 6:10] / _PRICE_SCALE,
        ask_size=v[:, 10].astype(np.int64),
        regular=regular,
    )


BLOCK_ZIPS = 256  # zips checked together: about 100k rows, a few MB


class _Blocks:
    """The jobs' zips checked a block at a time, each zip's result kept until its job asks.

    A block is the next zips of one kind from the asking zip on, so results come back in
    file order and at most two blocks (trade and quote) are held at once.
    """

    def __init__(
        self,
        files: list[LeanFile],
        reports: list[ImportReport],
        calendar: ExchangeCalendar,
        max_member_bytes: int,
        block: int = BLOCK_ZIPS,
    ) -> None:
        self.files, self.reports, self.calendar = files, reports, calendar
        self.max_member_bytes, self.block = max_member_bytes, block
        self.days = SessionDays(calendar)
        self.done: dict[int, Checked] = {}

    def result(self, k: int) -> tuple[BarBatch | QuoteBatch, I64]:
        if k not in self.done:
            kind, todo = self.files[k].kind, list[int]()
            for j in range(k, len(self.files)):
                if len(todo) == self.block:
                    break
                if self.files[j].kind == kind and j not in self.done:
                    todo.append(j)
            block = check_lean_files([self.files[j] for j in todo], self.calendar,
                                     [self.reports[j] for j in todo], self.max_member_bytes,
                                     self.days)  # fmt: skip
            self.done.update(zip(todo, block, strict=True))
        got = self.done.pop(k)
        if isinstance(got, ImportError_):
            raise got
        return got


def lean_jobs(
    directory: Path,
    calendar: ExchangeCalendar,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    block: int = BLOCK_ZIPS,
) -> list[Job]:
    """One job per zip under ``directory``, for :func:`sessionflow.importer.command.run_import`."""
    files = lean_files(Path(directory))
    reports = [ImportReport(str(f.path)) for f in files]
    blocks = _Blocks(files, reports, calendar, max_member_bytes, block)

    def job(k: int) -> Job:
        def chunks() -> Iterator[tuple[BarBatch | QuoteBatch, I64]]:
            yield blocks.result(k)

        return Job(reports[k], chunks)

    return [job(k) for k in range(len(files))]


def import_lean(
    store: Store,
    directory: Path,
    calendar: ExchangeCalendar,
    on_conflict: str = "error",
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> list[ImportReport]:
    """Import every LEAN zip under ``directory`` in one transaction; one report per file.

    Raises ImportError_ (nothing written) on the first unreadable file or a conflict.
    """
    result = run_import(store, lean_jobs(directory, calendar, max_member_bytes), on_conflict)
    result.raise_on_error()
    return result.reports
