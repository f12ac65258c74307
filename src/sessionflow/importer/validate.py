"""Row checks shared by every bar importer. Each failing row gets exactly one reason.

Numbers follow a strict grammar (``float`` alone would take ``1_000`` as 1000) and
timestamps are read from their text, so a nanosecond part that ``fromisoformat``
would silently drop is seen. A timestamp without a UTC offset is only read when the
caller names the zone: guessing it put whole files hours off.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from sessionflow.models import (
    MAX_PRICE,
    MAX_TS_US,
    MAX_VOLUME,
    MIN_PRICE,
    MIN_TS_US,
    from_us,
    to_us,
)
from sessionflow.store.base import BOOL, I64
from sessionflow.time_provider import ExchangeCalendar, SessionInfo

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
    "unmapped_instrument",  # DBN: an instrument_id the file's metadata maps to no symbol that day
    "from_future",  # a bar whose minute has not ended yet (live clock, or the wall clock at import)
    "unparsable_date",  # corporate actions: a date that is not yyyymmdd / yyyy-mm-dd
    "bad_factor",  # corporate actions: a split, factor or dividend out of range
    "no_reference_close",  # a cash dividend with no stored close before its ex-date
)

PRICE_FIELDS = ("open", "high", "low", "close")
_DIGITS = re.compile(r"[+-]?[0-9]+")  # ASCII only: int() also reads Arabic-Indic digits
_FRACTION = re.compile(r"\d{2}:?\d{2}:?\d{2}[.,](\d+)")
_EPOCH = datetime(1970, 1, 1)
EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}  # microseconds per unit; ns divides


FUTURE_TOLERANCE_US = 2_000_000  # clock skew allowed, as live's future_tolerance_seconds


def latest_bar_open_us(now_us: int | None = None) -> int:
    """The last 1m bar open an import accepts: a bar is complete once its minute has ended
    (timestamps are opens), so one whose end is past the wall clock is ``from_future``."""
    if now_us is None:
        now_us = time.time_ns() // 1000
    return now_us + FUTURE_TOLERANCE_US - 60_000_000


class RowProblem(ValueError):
    """One row is refused: ``reason`` is one of REASONS, ``detail`` names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class NaiveTime(ValueError):
    """A timestamp without a UTC offset and no ``--tz``: the whole file stops."""

    def __init__(self, text: str, wall_us: int) -> None:
        super().__init__(text)
        self.text = text
        self.wall_us = wall_us

    def message(self, where: str, exchange_tz: ZoneInfo) -> str:
        readings = []
        for label, tz in ((f"exchange time ({exchange_tz.key})", exchange_tz), ("UTC", None)):
            try:
                us = localize(self.wall_us, tz) if tz is not None else self.wall_us
                readings.append(f"as {label} it is {from_us(us).isoformat()}")
            except (OverflowError, ValueError):
                readings.append(f"as {label} it is out of range")
        return (
            f"{where}: timestamp {self.text!r} has no UTC offset; {readings[0]}, {readings[1]}; "
            "pass --tz exchange, --tz UTC or another IANA zone name"
        )


class NumericTime(ValueError):
    """An integer time without ``--epoch``: its unit cannot be guessed, the whole file stops."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def message(self, where: str) -> str:
        return (
            f"{where}: timestamp {self.text!r} is a number; pass --epoch s, ms, us or ns "
            "(its unit, counted from 1970-01-01 UTC)"
        )


def epoch_unit(unit: str | None) -> str | None:
    """``--epoch``: None or one of EPOCH_UNITS (case-insensitive)."""
    if unit is None:
        return None
    if unit.strip().lower() not in EPOCH_UNITS:
        raise ValueError(f"--epoch {unit!r}: use one of {', '.join(EPOCH_UNITS)}")
    return unit.strip().lower()


def is_integer_text(cell: object) -> bool:
    return isinstance(cell, str) and _DIGITS.fullmatch(cell.strip()) is not None


def parse_epoch(cell: object, unit: str) -> int:
    """An integer count of ``unit`` since 1970-01-01 UTC, as epoch microseconds."""
    if isinstance(cell, int) and not isinstance(cell, bool):
        n = cell
    elif is_integer_text(cell):
        n = int(str(cell).strip())
    else:
        detail = f"time {_show(cell)} is not an integer (--epoch {unit})"
        raise RowProblem("unparsable_time", detail)
    if unit == "ns":
        if n % 1000:
            raise RowProblem("not_minute_aligned", f"time {n} ns has a sub-microsecond part")
        return check_range(n // 1000, f"{n} ns")
    return check_range(n * EPOCH_UNITS[unit], f"{n} {unit}")


def parse_number(name: str, cell: object) -> float:
    """A price or size cell: a number in plain decimal/exponent notation, or nan/inf."""
    if type(cell) is str:
        text = cell
    elif isinstance(cell, bool) or cell is None:
        raise RowProblem("bad_number", f"{name} {cell!r}")
    elif isinstance(cell, int | float):
        return float(cell)
    else:
        text = str(cell)
    try:  # float() alone also takes "1_000" and non-ASCII digits: refuse those
        value = float(text)
    except ValueError:
        value = None
    if value is None or "_" in text or not text.isascii():
        raise RowProblem("bad_number", f"{name} {text!r}")
    return value


def parse_volume(cell: object) -> int:
    """A whole number of shares within MAX_VOLUME (exact for integers of any size)."""
    if isinstance(cell, int) and not isinstance(cell, bool):
        value = cell
    elif isinstance(cell, str) and _DIGITS.fullmatch(cell.strip()):
        value = int(cell.strip())
    else:
        v = parse_number("volume", cell)
        if not math.isfinite(v):
            raise RowProblem("nan_or_inf", f"volume {_show(cell)}")
        if v != math.floor(v):
            raise RowProblem("bad_number", f"volume {_show(cell)}")
        value = int(v)
    if value < 0:
        raise RowProblem("negative_volume", f"volume {_show(cell)}")
    if value > MAX_VOLUME:
        raise RowProblem("volume_out_of_range", f"volume {_show(cell)} above {MAX_VOLUME:,}")
    return value


def check_prices(o: float, h: float, lo: float, c: float, cells: Sequence[object]) -> None:
    """The same order of reasons as ``models.price_problem``; the field is named where one is."""
    if (
        math.isfinite(o + h + lo + c)
        and min(o, h, lo, c) >= MIN_PRICE
        and max(o, h, lo, c) <= MAX_PRICE
        and lo <= min(o, c)
        and h >= max(o, c)
    ):
        return  # the common case; a NaN or inf anywhere makes the sum non-finite
    named = list(zip(PRICE_FIELDS, (o, h, lo, c), cells[:4], strict=True))
    for name, v, cell in named:
        if not math.isfinite(v):
            raise RowProblem("nan_or_inf", f"{name} {_show(cell)}")
    for name, v, cell in named:
        if v <= 0:
            raise RowProblem("non_positive_price", f"{name} {_show(cell)}")
    for name, v, cell in named:
        if v > MAX_PRICE:
            raise RowProblem("price_out_of_range", f"{name} {_show(cell)} above {MAX_PRICE:g}")
        if v < MIN_PRICE:
            raise RowProblem("price_out_of_range", f"{name} {_show(cell)} below {MIN_PRICE:g}")
    if h < lo:
        raise RowProblem("high_below_low", "")  # the caller fills in the whole row
    if h < max(o, c):
        raise RowProblem("high_below_open_close", "")
    if lo > min(o, c):
        raise RowProblem("low_above_open_close", "")


def _show(cell: object) -> str:
    return repr(cell) if isinstance(cell, str) else repr(str(cell))


def localize(wall_us: int, tz: ZoneInfo) -> int:
    """Epoch microseconds of a wall-clock time (microseconds since 1970-01-01 00:00) in ``tz``."""
    return to_us((_EPOCH + timedelta(microseconds=wall_us)).replace(tzinfo=tz))


def check_range(us: int, text: str) -> int:
    if not MIN_TS_US <= us < MAX_TS_US:
        raise RowProblem("time_out_of_range", f"time {text!r} outside 1970-01-01..2100-01-01")
    return us


def parse_time(text: str, tz: ZoneInfo | None) -> int:
    """ISO-8601 text to epoch microseconds; raises RowProblem, or NaiveTime without ``tz``."""
    s = text.strip()
    try:
        ts = datetime.fromisoformat(s)
    except ValueError:
        raise RowProblem("unparsable_time", f"time {text!r}") from None
    frac = _FRACTION.search(s) if "." in s or "," in s else None
    if frac is not None and frac[1][6:].strip("0"):
        raise RowProblem("not_minute_aligned", f"time {text!r} has a sub-microsecond part")
    try:
        if ts.tzinfo is None:
            wall = (ts - _EPOCH) // timedelta(microseconds=1)
            if tz is None:
                raise NaiveTime(text, wall)
            check_range(wall, text)
            return check_range(localize(wall, tz), text)
        return check_range(to_us(ts), text)
    except OverflowError:
        raise RowProblem("time_out_of_range", f"time {text!r}") from None


class SessionFilter:
    """Classifies a minute as regular, extended (04:00-20:00 on a session day) or outside."""

    def __init__(self, calendar: ExchangeCalendar) -> None:
        self.calendar = calendar
        self._cache: dict[date, tuple[int, int, int, int] | None] = {}
        self._bucket = -1  # a 15-minute UTC bucket never spans two local dates
        self._bounds: tuple[int, int, int, int] | None = None

    def classify_us(self, us: int) -> str:
        bucket = us // 900_000_000
        if bucket != self._bucket:
            self._bucket, self._bounds = bucket, self._day_bounds(from_us(us))
        bounds = self._bounds
        if bounds is None:
            return "outside"
        if bounds[0] <= us < bounds[1]:
            return "regular"
        if bounds[2] <= us < bounds[3]:
            return "extended"
        return "outside"

    def classify_many(self, us: I64) -> tuple[BOOL, BOOL]:
        """(regular, extended) per minute, as :meth:`classify_us` decides each one.

        Each session's extended hours (04:00-20:00) lie inside its own local date, so
        the session of a minute's local date is the last one opening at or before it.
        """
        if not len(us):
            return np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.bool_)
        tz = self.calendar.tz
        first = from_us(int(us.min())).astimezone(tz).date()
        last = from_us(int(us.max())).astimezone(tz).date()
        try:
            infos = self.calendar.sessions(first, last)
        except ValueError:  # beyond the calendar's years: minute by minute
            kinds = [self.classify_us(int(u)) for u in us.tolist()]
            return (np.array([k == "regular" for k in kinds], dtype=np.bool_),
                    np.array([k == "extended" for k in kinds], dtype=np.bool_))  # fmt: skip
        table = np.array([self._bounds_of(info) for info in infos] or [(0, 0, 0, 0)],
                         dtype=np.int64).reshape(-1, 4)  # fmt: skip
        at = np.maximum(np.searchsorted(table[:, 2], us, side="right") - 1, 0)
        per_row = table[at]
        regular = (per_row[:, 0] <= us) & (us < per_row[:, 1])
        extended = (per_row[:, 2] <= us) & (us < per_row[:, 3]) & ~regular
        return regular, extended

    def classify(self, ts: datetime) -> str:
        return self.classify_us(to_us(ts))

    def _day_bounds(self, ts: datetime) -> tuple[int, int, int, int] | None:
        local_day = ts.astimezone(self.calendar.tz).date()
        if local_day not in self._cache:
            info = self.calendar.session_of(ts)
            self._cache[local_day] = None if info is None else self._bounds_of(info)
        return self._cache[local_day]

    def _bounds_of(self, info: SessionInfo) -> tuple[int, int, int, int]:
        ext_open, ext_close = self.calendar.extended_bounds(info)
        return to_us(info.open), to_us(info.close), to_us(ext_open), to_us(ext_close)
