"""The ages a search's recency reads, in days."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tzurot.memory.recall import _ages_in_days


def test_ages_are_days_to_now_whatever_the_time_zone() -> None:
    now = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    berlin = timezone(timedelta(hours=1))
    times = [
        now - timedelta(days=30, seconds=7, microseconds=5),
        datetime(2026, 12, 3, 16, 0, tzinfo=berlin),  # the same instant as now
        now + timedelta(hours=12),  # after now (a clock ahead): a negative age
    ]
    ages = _ages_in_days(times, now)
    expected = [(now - t).total_seconds() / 86400.0 for t in times]
    assert ages.tolist() == pytest.approx(expected, abs=1e-9)
    assert ages[1] == 0.0
    assert _ages_in_days([], now).tolist() == []
