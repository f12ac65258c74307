"""Databento DBN files written with databento-dbn's own encoder, for tests and benchmarks.

The reader (``importer/dbn.py``) is checked against the format as Databento's package
writes it: the metadata header from ``Metadata``, records as their bytes, zstd from
``Transcoder``. Needs the ``databento`` extra.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import databento_dbn as dbn
from databento_dbn.metadata import MappingInterval

# The stubs type enum members as str: these are the enum values themselves.
OHLCV_1M = dbn.Schema.from_str("ohlcv-1m")
RAW_SYMBOL = dbn.SType.from_str("raw_symbol")
INSTRUMENT_ID = dbn.SType.from_str("instrument_id")


@dataclass
class Interval:
    """The fields of ``databento_dbn.MappingInterval``: a symbol over [start, end) dates."""

    start_date: date
    end_date: date  # exclusive
    symbol: str


@dataclass
class Mapping:
    """The fields of ``databento_dbn.SymbolMapping``: one requested symbol's intervals."""

    raw_symbol: str
    intervals: Sequence[MappingInterval]


def write_dbn(
    path: Path,
    records: bytes,
    mappings: Sequence[Mapping],
    schema: dbn.Schema | None = OHLCV_1M,
    stype_in: dbn.SType = RAW_SYMBOL,
    start_ns: int = 0,
    version: int = dbn.DBN_VERSION,
) -> Path:
    """Metadata then ``records`` (encoded records, concatenated); zstd when the name ends .zst."""
    meta = dbn.Metadata(
        dataset="XNAS.ITCH", schema=schema, start=start_ns, stype_in=stype_in,
        stype_out=INSTRUMENT_ID, symbols=[m.raw_symbol for m in mappings],
        mappings=mappings, version=version,
    )  # fmt: skip
    data = bytes(meta) + records
    if path.name.endswith(".zst"):
        out = io.BytesIO()
        encoding, zstd = dbn.Encoding.from_str("dbn"), dbn.Compression.from_str("zstd")
        encoder = dbn.Transcoder(out, encoding, zstd)
        encoder.write(data)
        encoder.finish()
        data = out.getvalue()
    path.write_bytes(data)
    return path
