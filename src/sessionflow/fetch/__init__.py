"""Downloading history from a vendor into the store (``sessionflow fetch alpaca``).

A download is planned from the exchange calendar and what the store already holds
(``fetch_log``), asked for in multi-symbol windows, validated row by row with the
importer's checks and written page by page, so an interruption keeps every page and
a second run asks only for what is missing.
"""

from sessionflow.fetch.plan import Window, plan_windows
from sessionflow.fetch.run import FetchReport, FetchStopped, fetch_alpaca

__all__ = ["FetchReport", "FetchStopped", "Window", "fetch_alpaca", "plan_windows"]
