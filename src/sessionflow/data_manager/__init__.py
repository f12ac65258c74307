"""The DataManager: what strategies ask for data; wires source, clock, store and session_data."""

from sessionflow.data_manager.manager import DataManager

__all__ = ["DataManager"]
