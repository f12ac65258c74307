"""The SystemManager: builds one system from settings and owns its mode and state.

The names load on first use: an import command needs only ``Settings``, and the manager
module brings in the data manager and its feeds (about 0.3 s of a command's start).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = "settings" if name == "Settings" else "manager"
    return getattr(import_module(f"{__name__}.{module}"), name)
