"""Getting data into the store: CSV/Parquet bars and LEAN minute zips, with row-level validation."""

from sessionflow.importer.bars import ImportError_, ImportReport, import_bars, read_bar_file
from sessionflow.importer.lean import import_lean, lean_files, read_lean_file

__all__ = [
    "ImportError_",
    "ImportReport",
    "import_bars",
    "import_lean",
    "lean_files",
    "read_bar_file",
    "read_lean_file",
]
