from datetime import UTC, date, datetime

import pytest

from sessionflow.time_provider import ExchangeCalendar


def test_thanksgiving_is_closed_and_friday_closes_at_13_et(calendar: ExchangeCalendar) -> None:
    assert not calendar.is_session(date(2024, 11, 28))
    friday = calendar.session(date(2024, 11, 29))
    assert friday.minutes == 210
    assert friday.early_close
    assert calendar.local(friday.close).hour == 13
    assert friday.close == datetime(2024, 11, 29, 18, 0, tzinfo=UTC)


def test_open_moves_with_daylight_saving(calendar: ExchangeCalendar) -> None:
    before = calendar.session(date(2024, 3, 8))
    after = calendar.session(date(2024, 3, 11))
    assert before.open == datetime(2024, 3, 8, 14, 30, tzinfo=UTC)
    assert after.open == datetime(2024, 3, 11, 13, 30, tzinfo=UTC)
    assert calendar.local(before.open).hour == calendar.local(after.open).hour == 9


def test_previous_sessions_count_trading_days_not_calendar_days(
    calendar: ExchangeCalendar,
) -> None:
    days = [s.date for s in calendar.previous_sessions(date(2024, 12, 2), 5)]
    assert days == [
        date(2024, 11, 22),
        date(2024, 11, 25),
        date(2024, 11, 26),
        date(2024, 11, 27),
        date(2024, 11, 29),
    ]


def test_closed_day_and_unknown_calendar_are_clear_errors(calendar: ExchangeCalendar) -> None:
    with pytest.raises(ValueError, match="2024-11-28 is not a XNYS trading session"):
        calendar.session(date(2024, 11, 28))
    with pytest.raises(ValueError, match="unknown exchange calendar 'NOPE'"):
        ExchangeCalendar("NOPE")
