"""Arrow tables handed to pandas or polars: the one place either library is imported.

Neither is imported before a frame is asked for, so ``import sessionflow`` and the
CLI's start do not pay for them (pandas comes in with exchange_calendars anyway;
polars is optional: ``pip install 'sessionflow[polars]'``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

BACKENDS = ("pandas", "polars")


class FrameBackendError(ValueError):
    """An unknown backend, or one whose library is not installed."""

    UNKNOWN = "backend {name!r}: use pandas or polars"
    MISSING = (
        "backend {name!r} needs the {name} package, which is not installed: "
        "pip install 'sessionflow[polars]'"
    )

    def __init__(self, name: str, missing: bool = False) -> None:
        super().__init__((self.MISSING if missing else self.UNKNOWN).format(name=name))
        self.name = name


def check_backend(name: str) -> str:
    """``name`` if it is a backend whose library imports here; else FrameBackendError."""
    if name not in BACKENDS:
        raise FrameBackendError(name)
    try:
        __import__(name)
    except ImportError:
        raise FrameBackendError(name, missing=True) from None
    return name


def to_frame(table: pa.Table, backend: str = "pandas") -> Any:
    """``table`` as a pandas or polars DataFrame (typed ``Any``: neither is a hard import).

    pandas gets Arrow's columns with numpy dtypes (timestamps tz-aware, UTC) and a
    plain 0..n-1 index; polars takes the Arrow buffers as they are.
    """
    if check_backend(backend) == "polars":
        import polars as pl

        return pl.from_arrow(table, rechunk=False)
    return table.to_pandas()
