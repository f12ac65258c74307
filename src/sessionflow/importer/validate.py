"""Row checks shared by every bar importer. Each failing row gets exactly one reason."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sessionflow.models import to_us
from sessionflow.time_provider import ExchangeCalendar

REASONS = (
    "malformed_row",
    "unparsable_time",
    "bad_number",
    "nan_or_inf",
    "non_positive_price",
    "price_out_of_range",
    "high_below_low",
    "high_below_open_close",
    "low_above_open_close",
    "negative_volume",
    "volume_out_of_range",
    "time_out_of_range",
    "not_minute_aligned",
    "outside_session",
    "duplicate",
    "out_of_order",
    "unknown_symbol",
    "bad_symbol",
    "from_future",  # live: stamped later than the live clock allows
)


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """ISO-8601; a timestamp without an offset is read in the exchange's time zone."""
    ts = datetime.fromisoformat(text.strip())
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts


class SessionFilter:
    """Classifies a minute as regular, extended (04:00-20:00 on a session day) or outside."""

    def __init__(self, calendar: ExchangeCalendar) -> None:
        self.calendar = calendar
        self._cache: dict[object, tuple[int, int, int, int] | None] = {}

    def classify(self, ts: datetime) -> str:
        local_day = ts.astimezone(self.calendar.tz).date()
        if local_day in self._cache:
            bounds = self._cache[local_day]
        else:
            info = self.calendar.session_of(ts)
            if info is None:
                bounds = None
            else:
                ext_open, ext_close = self.calendar.extended_bounds(info)
                bounds = (to_us(info.open), to_us(info.close), to_us(ext_open), to_us(ext_close))
            self._cache[local_day] = bounds
        if bounds is None:
            return "outside"
        us = to_us(ts)
        if bounds[0] <= us < bounds[1]:
            return "regular"
        if bounds[2] <= us < bounds[3]:
            return "extended"
        return "outside"
