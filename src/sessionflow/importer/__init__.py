"""Getting data into the store: CSV/Parquet bars and LEAN minute zips, with row-level validation."""

from sessionflow.importer.bars import ImportError_, ImportReport, iter_bar_file, read_bar_file
from sessionflow.importer.command import (
    ImportResult,
    Job,
    bar_job,
    import_bars,
    run_import,
)
from sessionflow.importer.lean import import_lean, lean_files, lean_jobs, read_lean_file

__all__ = [
    "ImportError_",
    "ImportReport",
    "ImportResult",
    "Job",
    "bar_job",
    "import_bars",
    "import_lean",
    "iter_bar_file",
    "lean_files",
    "lean_jobs",
    "read_bar_file",
    "read_lean_file",
    "run_import",
]
