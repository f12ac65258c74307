"""Store errors cross process boundaries (Dask workers) whole: same class, same one line."""

from __future__ import annotations

import pickle

import pytest

from sessionflow.store import errors
from sessionflow.store.errors import StoreError, StoreLocked


def _every_error() -> list[StoreError]:
    made: list[StoreError] = [StoreLocked("/data/s.duckdb", 4242), StoreLocked("x.duckdb", None)]
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, StoreError) and cls is not StoreLocked:
            made.append(cls("/data/s.duckdb", "why it failed"))
    return made


@pytest.mark.parametrize("exc", _every_error(), ids=lambda e: type(e).__name__)
def test_a_pickled_store_error_keeps_its_class_fields_and_message(exc: StoreError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc) and back.path == exc.path and back.detail == exc.detail
    assert vars(back) == vars(exc)
