"""Live market-data feeds: a vendor-neutral interface and the Alpaca adapter."""

from sessionflow.feeds.base import (
    Feed,
    FeedAuthError,
    FeedError,
    FeedHealth,
    FeedSink,
    FeedState,
    QuoteUpdate,
)
from sessionflow.feeds.credentials import AlpacaCredentials

__all__ = [
    "AlpacaCredentials",
    "Feed",
    "FeedAuthError",
    "FeedError",
    "FeedHealth",
    "FeedSink",
    "FeedState",
    "QuoteUpdate",
]
