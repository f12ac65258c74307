"""Databento DBN ``ohlcv-1m`` files (``import bars --preset databento``), read as columns.

A DBN file is a metadata header (dataset, schema, symbology mappings) followed by
fixed-size binary records. The header is decoded by the databento-dbn package; the
records are viewed as a numpy structured array with the package's own record layout
(``OHLCVMsg._dtypes``), so no Python object is made per record. Facts taken from
Databento's docs (docs/formats.md cites them):

- ``ts_event`` is the bar's open (the inclusive start of the interval), in UTC ns;
- prices are int64 counts of 1e-9 (``UNDEF_PRICE``, int64 max, means no price);
- a record names an ``instrument_id``, which the metadata's mappings turn into the
  requested symbol for a range of UTC dates (start inclusive, end exclusive).

Each record's index in the file (0 for the first) stands for the line number; every
record goes through the same checks, session filter and reasons as a CSV row.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.importer.checker import Candidates, RowChecker
from sessionflow.importer.report import ImportError_, ImportReport
from sessionflow.models import (
    MAX_PRICE,
    MAX_TS_US,
    MAX_VOLUME,
    MIN_PRICE,
    MIN_TS_US,
    SymbolError,
    normalize_symbol,
)
from sessionflow.store import BarBatch
from sessionflow.store.base import BOOL, F64, I64, OBJ
from sessionflow.time_provider import ExchangeCalendar

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_PREFIX = struct.Struct("<3sBI")  # b"DBN", the DBN version, the metadata's length in bytes
MAX_METADATA_BYTES = 256 << 20  # mappings of every US equity for a year are a few MB
_NS_PER_DAY = 86_400_000_000_000
_PRICES = ("open", "high", "low", "close")
_EXACT = 2**53  # a count of 1e-9 below this is an exact double: one division rounds once
_EPOCH = date(1970, 1, 1)
UNDEF_PRICE = 2**63 - 1  # databento_dbn.UNDEF_PRICE: the record has no price


def _package() -> Any:
    try:
        import databento_dbn
    except ModuleNotFoundError:
        raise ImportError_(
            "--preset databento needs the databento-dbn package: "
            "pip install 'sessionflow[databento]'"
        ) from None
    return databento_dbn


def iter_dbn_file(
    path: Path,
    calendar: ExchangeCalendar,
    report: ImportReport,
    symbol: str | None,
    keep_extended: bool,
    tz: ZoneInfo | None,
    chunk_rows: int,
) -> Iterator[tuple[BarBatch, I64]]:
    """Validate a DBN file's records in chunks, filling ``report``; yields the good rows."""
    if symbol is not None:
        raise ImportError_(
            f"{path}: --symbol {symbol}: a DBN file names its instruments in its metadata; "
            "drop --symbol"
        )
    if tz is not None:
        raise ImportError_(f"{path}: --tz: DBN times are UTC nanoseconds; drop --tz")
    dbn = _package()
    with _open(path) as fh:
        metadata = _metadata(path, fh, dbn)
        schema = metadata.schema
        if schema is not None and str(schema) != "ohlcv-1m":
            raise ImportError_(
                f"{path}: schema {schema}: import bars takes ohlcv-1m records "
                "(1-minute bars; sessionflow derives longer ones)"
            )
        symbols = SymbolMap(path, metadata, dbn)
        dtype = _record_dtype(dbn, bool(metadata.ts_out))
        check = RowChecker(path, report, calendar, None, keep_extended, time_kind="utc_us")
        try:
            yield from _chunks(path, fh, dbn, check, symbols, dtype, chunk_rows)
        except OSError as exc:  # a damaged zstd frame, a truncated stream, a failing disk
            raise ImportError_(f"{path}: unreadable DBN file ({exc})") from exc


def _chunks(
    path: Path,
    fh: IO[bytes],
    dbn: Any,
    check: RowChecker,
    symbols: SymbolMap,
    dtype: np.dtype[Any],
    chunk_rows: int,
) -> Iterator[tuple[BarBatch, I64]]:
    first = 0
    while data := _read(fh, chunk_rows * dtype.itemsize):
        if len(data) % dtype.itemsize:
            raise ImportError_(
                f"{path}: record {first + len(data) // dtype.itemsize} is cut short "
                f"({len(data) % dtype.itemsize} of {dtype.itemsize} bytes): a truncated file"
            )
        records = np.frombuffer(data, dtype=dtype)
        _check_kinds(path, dbn, records, first, dtype.itemsize)
        _rows(check, records, first, symbols)
        first += len(records)
        yield check.take()


def _open(path: Path) -> IO[bytes]:
    """The file's bytes, through zstd when it starts with zstd's magic number (any name)."""
    with path.open("rb") as raw:
        head = raw.read(4)
    if head != _ZSTD_MAGIC:
        return path.open("rb")
    import pyarrow as pa

    return io.BufferedReader(pa.input_stream(str(path), compression="zstd"))


def _read(fh: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes: a decompressing stream may return fewer before its end."""
    parts, got = [], 0
    while got < size:
        part = fh.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _metadata(path: Path, fh: IO[bytes], dbn: Any) -> Any:
    try:
        prefix = _read(fh, _PREFIX.size)
    except OSError as exc:  # zstd that does not decompress
        raise ImportError_(f"{path}: unreadable DBN file ({exc})") from exc
    if len(prefix) < _PREFIX.size or prefix[:3] != b"DBN":
        raise ImportError_(
            f"{path}: not a DBN file (it starts with {prefix[:8]!r}, a DBN file with b'DBN')"
        )
    _, _, length = _PREFIX.unpack(prefix)
    if length > MAX_METADATA_BYTES:
        raise ImportError_(
            f"{path}: DBN metadata of {length:,} bytes, above the limit of "
            f"{MAX_METADATA_BYTES:,}: not a Databento file, or a damaged one"
        )
    body = _read(fh, length)
    try:
        return dbn.Metadata.decode(prefix + body)
    except (dbn.DBNError, ValueError) as exc:
        raise ImportError_(f"{path}: unreadable DBN metadata ({exc})") from exc


def _record_dtype(dbn: Any, ts_out: bool) -> np.dtype[Any]:
    """The package's OHLCV record layout (plus the live gateway's send time with ts_out)."""
    fields: list[tuple[str, str]] = list(dbn.OHLCVMsg._dtypes)
    if ts_out:
        fields.append(("ts_out", "u8"))
    dtype = np.dtype(fields)
    if dtype.itemsize != dbn.OHLCVMsg.size_hint + 8 * ts_out:
        raise ImportError_(
            f"databento-dbn {getattr(dbn, '__version__', '?')}: OHLCV layout of "
            f"{dtype.itemsize} bytes, not {dbn.OHLCVMsg.size_hint}; report this"
        )
    return dtype


def _check_kinds(path: Path, dbn: Any, records: Any, first: int, size: int) -> None:
    """Every record is an ohlcv-1m one of the expected size, or the file is refused."""
    length = records["length"].astype(np.int64) * 4  # the header counts 4-byte words
    wrong = np.flatnonzero((records["rtype"] != dbn.RType.OHLCV_1M.value) | (length != size))
    if not len(wrong):
        return
    i = int(wrong[0])
    rtype = int(records["rtype"][i])
    try:
        kind = str(dbn.RType.from_int(rtype))
    except (ValueError, dbn.DBNError):
        kind = f"rtype {rtype}"
    raise ImportError_(
        f"{path}: record {first + i} is {kind} ({int(length[i])} bytes): import bars takes "
        "ohlcv-1m records (1-minute bars; sessionflow derives longer ones)"
    )


class SymbolMap:
    """instrument_id and UTC date -> symbol, from the metadata's date-ranged mappings.

    Either side of a mapping may be the instrument id: a file requested by symbol maps
    the symbol to ids per date range (stype_out instrument_id); one requested by id maps
    the id to symbols (stype_in instrument_id). Ranges are sorted by (id, start day) so
    a record's range is one binary search.
    """

    def __init__(self, path: Path, metadata: Any, dbn: Any) -> None:
        by_id = metadata.stype_in == dbn.SType.INSTRUMENT_ID
        rows: list[tuple[int, int, int, str]] = []
        for raw, intervals in metadata.mappings.items():
            for it in intervals:
                if not it["symbol"]:  # an empty symbol: an old file's "not resolved" range
                    continue
                iid_text, name = (raw, it["symbol"]) if by_id else (it["symbol"], raw)
                try:
                    iid = int(iid_text)
                except ValueError:
                    raise ImportError_(
                        f"{path}: mapping {raw!r} -> {it['symbol']!r}: {iid_text!r} is not an "
                        f"instrument id (stype_in {metadata.stype_in}, "
                        f"stype_out {metadata.stype_out})"
                    ) from None
                start, end = (it[k] - _EPOCH for k in ("start_date", "end_date"))
                rows.append((iid, start.days, end.days, name))
        rows.sort()
        self.iid = np.array([r[0] for r in rows], dtype=np.int64)
        self.start = np.array([r[1] for r in rows], dtype=np.int64)
        self.end = np.array([r[2] for r in rows], dtype=np.int64)
        self.key = (self.iid << 20) | self.start  # days since 1970 stay below 2**20
        names = sorted({r[3] for r in rows})
        normal: dict[str, str | None] = {}
        for n in names:
            try:
                normal[n] = normalize_symbol(n)
            except SymbolError:
                normal[n] = None  # the per-row path gives bad_symbol with the reason
        self.name: OBJ = np.array([normal[r[3]] or r[3] for r in rows], dtype=object)
        self.good: BOOL = np.array([normal[r[3]] is not None for r in rows], dtype=np.bool_)

    def lookup(self, iid: I64, day: I64) -> tuple[OBJ, BOOL, BOOL]:
        """(symbol, mapped, symbol valid) per record."""
        n = len(iid)
        if not len(self.key):
            none = np.zeros(n, dtype=np.bool_)
            return np.full(n, None, dtype=object), none, none
        at = np.searchsorted(self.key, (iid << 20) | day, side="right") - 1
        safe = np.maximum(at, 0)
        mapped = (at >= 0) & (self.iid[safe] == iid) & (day < self.end[safe])
        return self.name[safe], mapped, mapped & self.good[safe]


def to_prices(count: I64) -> F64:
    """Counts of 1e-9 as the doubles nearest their decimal value (as a CSV's text reads).

    Below 2**53 the count is an exact double and one correctly rounded division by 1e9
    gives the nearest double; above it (a price over $9,007,199) Python's exact integer
    division does.
    """
    out: F64 = count / 1e9
    big = np.flatnonzero(np.abs(count) >= _EXACT)
    if len(big):
        out[big] = [v / 1_000_000_000 for v in count[big].tolist()]
    return out


def _rows(check: RowChecker, rec: Any, first: int, symbols: SymbolMap) -> None:
    """Records passing every check go in as columns; the others one by one with a reason."""
    n = len(rec)
    lines = np.arange(first, first + n, dtype=np.int64)
    ts = rec["ts_event"]
    in_range = (ts >= MIN_TS_US * 1000) & (ts < MAX_TS_US * 1000)
    ts_ns = np.where(in_range, ts, 0).astype(np.int64)
    iid = rec["instrument_id"].astype(np.int64)
    sym, mapped, valid = symbols.lookup(iid, ts_ns // _NS_PER_DAY)
    counts = [rec[f].astype(np.int64) for f in _PRICES]
    undef = np.zeros(n, dtype=np.bool_)
    for count in counts:
        undef |= count == UNDEF_PRICE
    o, h, lo, c = (to_prices(x) for x in counts)
    volume = rec["volume"]
    us = ts_ns // 1000
    clean = valid & in_range & (ts_ns % 1000 == 0) & ~undef & (volume <= MAX_VOLUME)
    clean &= ((np.minimum(np.minimum(o, h), np.minimum(lo, c)) >= MIN_PRICE)
              & (np.maximum(np.maximum(o, h), np.maximum(lo, c)) <= MAX_PRICE)
              & (lo <= np.minimum(o, c)) & (h >= np.maximum(o, c)))  # fmt: skip
    clean &= (us % 60_000_000 == 0) & (us <= check.latest_open_us)
    check.report.rows += n
    volume_i = np.where(clean, volume, 0).astype(np.int64)
    check.add_columns(
        Candidates(lines[clean], sym[clean], us[clean], o[clean], h[clean], lo[clean],
                   c[clean], volume_i[clean], np.zeros(int(clean.sum()), dtype=np.bool_))
    )  # fmt: skip
    for i in np.flatnonzero(~clean).tolist():
        line, t = int(lines[i]), int(ts[i])
        if not in_range[i]:  # before the mapping, which needs the date
            check.reject(line, "time_out_of_range",
                         f"ts_event {t} ns outside 1970-01-01..2100-01-01")  # fmt: skip
        elif not mapped[i]:
            day = (_EPOCH + timedelta(days=t // _NS_PER_DAY)).isoformat()
            check.reject(line, "unmapped_instrument",
                         f"instrument_id {int(iid[i])} on {day} (UTC): no mapping in the "
                         "file's metadata")  # fmt: skip
        elif t % 1000:
            check.reject(line, "not_minute_aligned", f"ts_event {t} ns has a sub-microsecond part")
        elif undef[i]:
            name = next(f for f, x in zip(_PRICES, counts, strict=True) if x[i] == UNDEF_PRICE)
            check.reject(line, "bad_number", f"{name} is UNDEF_PRICE (no price)")
        else:
            cells = [float(p[i]) for p in (o, h, lo, c)]
            check.add(line, sym[i], t // 1000, [*cells, int(volume[i])])
