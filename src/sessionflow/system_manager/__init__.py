"""The SystemManager: builds one system from settings and owns its mode and state."""

from sessionflow.system_manager.manager import (
    Mode,
    State,
    StopReport,
    SystemManager,
    SystemStatus,
    build_system,
)
from sessionflow.system_manager.settings import Settings

__all__ = [
    "Mode",
    "Settings",
    "State",
    "StopReport",
    "SystemManager",
    "SystemStatus",
    "build_system",
]
