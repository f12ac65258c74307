"""Type stub of the compiled ``_kernels`` module (see _kernels.pyx)."""

import numpy as np
import numpy.typing as npt

class Columns:
    def __init__(
        self,
        open: npt.NDArray[np.float64],
        high: npt.NDArray[np.float64],
        low: npt.NDArray[np.float64],
        close: npt.NDArray[np.float64],
        volume: npt.NDArray[np.int64],
        present: npt.NDArray[np.bool_],
    ) -> None: ...

class Figures:
    def __init__(
        self,
        volume: npt.NDArray[np.int64],
        high: npt.NDArray[np.float64],
        low: npt.NDArray[np.float64],
        received: npt.NDArray[np.int64],
        last_slot: npt.NDArray[np.int64],
        bars: npt.NDArray[np.bool_],
        gap_open: npt.NDArray[np.bool_],
        quality: npt.NDArray[np.float64],
        quality_flags: npt.NDArray[np.bool_],
    ) -> None: ...

def rate(figs: Figures, table_row: npt.NDArray[np.float64], all_changed: bool) -> None: ...
def compact(
    has: npt.NDArray[np.bool_],
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    v: npt.NDArray[np.int64],
    rows: npt.NDArray[np.intp],
) -> int: ...
def put_row(
    grid: Columns,
    slot: int,
    has: npt.NDArray[np.bool_],
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    v: npt.NDArray[np.int64],
) -> None: ...
def write_fresh(
    grid: Columns,
    figs: Figures,
    rows: npt.NDArray[np.intp],
    slot: int,
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    v: npt.NDArray[np.int64],
) -> None: ...
def window(
    src: Columns,
    a: int,
    b: int,
    rows: npt.NDArray[np.intp] | None,
    o: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    v: npt.NDArray[np.int64],
    has: npt.NDArray[np.bool_],
) -> int: ...
