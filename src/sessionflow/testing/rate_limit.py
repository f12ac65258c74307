"""Alpaca's REST rate limit for the local trading and data servers.

Why a class of its own: the documented answer (HTTP 429 past the limit, and
``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` in unix seconds) is the data
server's REST too (``alpaca_server.FakeAlpaca`` uses it), and tests force
a 429 at a known request whatever the machine's speed. The window is wall time:
Alpaca counts real requests, whatever a replay's clock says.
"""

from __future__ import annotations

import math
import time

DEFAULT_LIMIT = 200  # requests per minute


class RateLimiter:
    """Requests per window; call ``count()`` with the server's lock held."""

    def __init__(self, limit: int | None, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._window_end, self._used = 0.0, 0
        self._forced, self._forced_reset_s = 0, 0.0
        self.limited = 0  # 429s sent

    def force(self, count: int, reset_in_s: float) -> None:
        """The next ``count`` requests answer 429, the window reopening in ``reset_in_s``."""
        self._forced, self._forced_reset_s = count, reset_in_s

    def count(self) -> tuple[dict[str, str], bool]:
        """Count one request: (headers to send, whether it is refused)."""
        now = time.time()
        if self._forced > 0:
            self._forced -= 1
            self.limited += 1
            return self._headers(self.limit or DEFAULT_LIMIT, 0, now + self._forced_reset_s), True
        if self.limit is None:
            return {}, False
        if now >= self._window_end:
            self._window_end, self._used = now + self.window_s, 0
        self._used += 1
        refused = self._used > self.limit
        self.limited += refused
        return self._headers(self.limit, self.limit - self._used, self._window_end), refused

    @staticmethod
    def _headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }


__all__ = ["DEFAULT_LIMIT", "RateLimiter"]
