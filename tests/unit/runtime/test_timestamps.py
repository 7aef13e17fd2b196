"""The arithmetic conversions agree with protobuf's own, instant for instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.runtime.timestamps import to_datetime, to_timestamp

INSTANTS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2026, 12, 7, 2, 45, 13, 123456, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
]


def _protobuf(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


@pytest.mark.parametrize("value", INSTANTS)
def test_an_aware_datetime_makes_protobufs_timestamp_and_back(value: datetime) -> None:
    stamp = to_timestamp(value)
    assert stamp == _protobuf(value)
    assert to_datetime(stamp) == value
    assert to_datetime(stamp).tzinfo is UTC
    assert to_datetime(stamp) == _protobuf(value).ToDatetime(tzinfo=UTC)


def test_a_naive_datetime_is_read_as_utc_as_protobuf_reads_it() -> None:
    naive = datetime(2026, 12, 7, 2, 45, 13, 5)
    assert to_timestamp(naive) == _protobuf(naive)
    assert to_datetime(to_timestamp(naive)) == naive.replace(tzinfo=UTC)


def test_nanoseconds_below_a_microsecond_are_dropped_as_protobuf_drops_them() -> None:
    stamp = Timestamp(seconds=-1, nanos=999_999_999)
    assert to_datetime(stamp) == stamp.ToDatetime(tzinfo=UTC)
    assert to_datetime(stamp).microsecond == 999_999
