"""A real PostgreSQL server for the tests of the server store (``sessionflow.testing.postgres``).

Missing binaries skip the tests, except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from sessionflow.testing.postgres import (
    BIN,
    SECRET_PASSWORD,
    SECRET_ROLE,
    USER,
    PgServer,
    missing_binaries,
)
from sessionflow.testing.postgres import pg_server as _private_server

__all__ = ["BIN", "SECRET_PASSWORD", "SECRET_ROLE", "USER", "PgServer", "missing", "pg_server"]


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """The private server; skipped (failed under CI=true) when its binaries are missing."""
    reason = missing_binaries()
    if reason is not None:
        missing(reason)
    with _private_server() as server:
        yield server
