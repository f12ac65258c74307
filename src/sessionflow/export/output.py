"""Where an export file appears: a temporary file of its own, placed whole at the end.

Two exports to one path used to share one ``.NAME.partial`` file, so the first could
report success while the file held the second's rows. Each export now writes its own
uniquely named temporary file beside the target and places it in one step; without
``replace`` the step is a hard link, which fails if the name exists, so a file written
meanwhile by another command is never overwritten.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path


class OutputExists(FileExistsError):
    """The export's target exists and replacing it was not asked for (``--force``)."""

    TEMPLATE = "--output {path}: the file exists; pass --force to replace it"

    def __init__(self, path: Path) -> None:
        super().__init__(errno.EEXIST, self.TEMPLATE.format(path=path))
        self.path = path

    def __str__(self) -> str:
        return self.TEMPLATE.format(path=self.path)


def temporary_beside(path: Path) -> Path:
    """A name in ``path``'s folder that no other export uses (same file system: one rename)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.partial")


def place(part: Path, path: Path, replace: bool) -> None:
    """Move the complete ``part`` to ``path``; refuse an existing ``path`` unless ``replace``."""
    if replace:
        os.replace(part, path)
        return
    try:
        os.link(part, path)  # atomic, and fails if the name exists
    except FileExistsError:
        raise OutputExists(path) from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise OutputExists(path) from None
        os.replace(part, path)
        return
    part.unlink()
