"""What every kind of download shares: its error, and its reports shown as JSON."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

_RENAMED = {"already": "already_complete"}  # the JSON name says what the count is


class FetchStopped(RuntimeError):
    """The store refused a write: the download stops, every earlier page stays written."""


def report_dict(report: Any) -> dict[str, Any]:
    """A report dataclass's fields in order, counters as sorted maps (``--json``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(report):
        value = getattr(report, f.name)
        if isinstance(value, Counter):
            value = dict(sorted(value.items()))
        out[_RENAMED.get(f.name, f.name)] = value
    return out


def page_items(rows: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(symbol, item) of one page, by symbol then as sent (a lone map counts as a list)."""
    for symbol, items in sorted(rows.items()):
        for item in items if isinstance(items, list) else [items]:
            yield symbol, item


__all__ = ["FetchStopped", "page_items", "report_dict"]
