"""Type stub of the compiled ``_kernels`` module (see _kernels.pyx)."""

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]
IDX = npt.NDArray[np.intp]

class Columns:
    def __init__(
        self,
        open: F64,
        high: F64,
        low: F64,
        close: F64,
        volume: I64,
        present: BOOL,
    ) -> None: ...

class Figures:
    def __init__(
        self,
        volume: I64,
        high: F64,
        low: F64,
        received: I64,
        last_slot: I64,
        bars: BOOL,
        gap_open: BOOL,
        quality: F64,
        quality_flags: BOOL,
    ) -> None: ...

def rate(figs: Figures, table_row: F64, all_changed: bool) -> None: ...
def compact(
    has: BOOL,
    o: F64,
    h: F64,
    lo: F64,
    c: F64,
    v: I64,
    rows: IDX,
) -> int: ...
def put_row(
    grid: Columns,
    slot: int,
    has: BOOL,
    o: F64,
    h: F64,
    lo: F64,
    c: F64,
    v: I64,
) -> None: ...
def write_fresh(
    grid: Columns,
    figs: Figures,
    rows: IDX,
    slot: int,
    o: F64,
    h: F64,
    lo: F64,
    c: F64,
    v: I64,
) -> None: ...
def window(
    src: Columns,
    a: int,
    b: int,
    rows: IDX | None,
    o: F64,
    h: F64,
    lo: F64,
    c: F64,
    v: I64,
    has: BOOL,
) -> int: ...
