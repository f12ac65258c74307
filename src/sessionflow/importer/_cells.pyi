"""Type stub of the compiled ``_cells`` module (see _cells.pyx)."""

from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

KIND_UNREAD: int
KIND_ABSOLUTE: int
KIND_WALL: int

def numbers(raw: U8, start: I64, end: I64, out: F64, ok: U8) -> None: ...
def integers(raw: U8, start: I64, end: I64, limit: int, out: I64, ok: U8) -> None: ...
def iso_times(raw: U8, start: I64, end: I64, out: I64, kind: U8) -> None: ...
def symbol_codes(
    raw: U8,
    start: I64,
    end: I64,
    widest: int,
    codes: dict[bytes, int],
    names: list[bytes],
    out: I64,
) -> None: ...
def number_rows(raw: U8 | Any, values: F64, plain: U8) -> int: ...
def csv_block(
    raw: U8 | Any,
    width: int,
    at: I64,
    iso: bool,
    max_line: int,
    volume_limit: int,
    widest: int,
    codes: dict[bytes, int],
    names: list[bytes],
    ints: I64,
    prices: F64,
    flags: U8,
) -> int: ...
