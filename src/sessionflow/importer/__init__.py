"""Getting data into the store: CSV/Parquet bars with row-level validation."""

from sessionflow.importer.bars import ImportError_, ImportReport, import_bars, read_bar_file

__all__ = ["ImportError_", "ImportReport", "import_bars", "read_bar_file"]
