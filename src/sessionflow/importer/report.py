"""What an import found in one file: rows read, accepted and rejected by reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_LISTED = 10_000  # rejections listed per file; all are counted


class ImportError_(ValueError):
    """The file cannot be imported at all; nothing was written."""


@dataclass
class ImportReport:
    """One file: rows read, accepted (new, unchanged, replaced, kept) and rejected by reason."""

    file: str
    rows: int = 0
    imported: int = 0  # rows accepted: new + unchanged + replaced + kept
    extended: int = 0
    new: int = 0
    unchanged: int = 0
    replaced: int = 0
    kept: int = 0  # differing rows not written (--on-conflict keep): an earlier value stays
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, detail
    committed: bool = False
    error: str | None = None

    def reject(self, line: int, reason: str, detail: str = "") -> None:
        self.rejected[reason] += 1
        if len(self.rejections) < MAX_LISTED:
            self.rejections.append((line, reason, detail))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "rows": self.rows,
            "imported": self.imported,
            "new": self.new,
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "kept": self.kept,
            "extended": self.extended,
            "committed": self.committed,
            "rejected": dict(sorted(self.rejected.items())),
            "rejections": [{"line": ln, "reason": r, "detail": d} for ln, r, d in self.rejections],
        }
        unlisted = sum(self.rejected.values()) - len(self.rejections)
        if unlisted:
            out["rejections_not_listed"] = unlisted
        if self.error is not None:
            out["error"] = self.error
        return out
