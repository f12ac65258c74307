"""Getting bars out of the store as the engine computes them (``sessionflow export``)."""

from sessionflow.export.bars import ExportChunk, export_chunks, parse_interval, write_bars

__all__ = ["ExportChunk", "export_chunks", "parse_interval", "write_bars"]
