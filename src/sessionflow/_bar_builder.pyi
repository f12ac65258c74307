"""Type stub of the compiled ``_bar_builder`` module (see _bar_builder.pyx)."""

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

class BarRows(Iterator[Any]):
    def __init__(
        self,
        bar_type: type[tuple[Any, ...]],
        symbols: list[Any],
        ts: npt.NDArray[np.int64],
        from_us: Callable[[int], datetime],
        open: npt.NDArray[np.float64],
        high: npt.NDArray[np.float64],
        low: npt.NDArray[np.float64],
        close: npt.NDArray[np.float64],
        volume: npt.NDArray[np.int64],
        regular: npt.NDArray[np.uint8],
        minutes: int,
        filled: bool,
        event_type: type[tuple[Any, ...]] | None = None,
        time: datetime | None = None,
        tail: tuple[Any, ...] = (),
    ) -> None: ...
    def __iter__(self) -> BarRows: ...
    def __next__(self) -> Any: ...
    def __length_hint__(self) -> int: ...
    def feed(self, callback: Callable[[Any], object]) -> None: ...
