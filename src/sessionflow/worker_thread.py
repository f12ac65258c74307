"""The one thread a component runs on (the stream coordinator, live coordinator, upkeep).

Shared so that ``stop()`` treats every worker alike: it joins each by name within one
budget, and a join called on the worker's own thread (``stop()`` from a consumer
callback) returns at once instead of raising; the thread unwinds at its next stop check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class WorkerThread:
    """A named daemon thread running ``target``; subclasses call ``super().__init__``."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)

    def join(self, timeout: float | None = None) -> None:
        if threading.current_thread() is self._thread:
            return
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread:
        return self._thread
