"""Buckets are UTC, whatever the machine's time zone; writes align to the wall clock."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from profiletel import Schedule, TimeGranularity
from profiletel._time import bucket_start_ms, next_write_s


@pytest.fixture
def tokyo_then_new_york() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.mark.usefixtures("tokyo_then_new_york")
def test_buckets_floor_in_utc_under_a_non_utc_time_zone() -> None:
    assert time.localtime(0).tm_hour == 9  # the zone really is Tokyo (UTC+9)
    moment = _ms(2013, 1, 1, 23, 59, 59) + 999

    assert bucket_start_ms(moment, TimeGranularity.Day) == _ms(2013, 1, 1)
    assert bucket_start_ms(moment, TimeGranularity.Hour) == _ms(2013, 1, 1, 23)
    assert bucket_start_ms(moment, TimeGranularity.Minute) == _ms(2013, 1, 1, 23, 59)


def test_timestamps_before_1970_floor_downwards() -> None:
    assert bucket_start_ms(-1, TimeGranularity.Hour) == -3_600_000


def test_ten_minute_schedule_fires_on_the_next_multiple_of_ten_minutes() -> None:
    now = datetime(2026, 1, 1, 12, 34, 56, tzinfo=timezone.utc).timestamp()

    fire = next_write_s(Schedule(TimeGranularity.Minute, 10), now)

    assert datetime.fromtimestamp(fire, tz=timezone.utc) == datetime(
        2026, 1, 1, 12, 40, tzinfo=timezone.utc
    )


def test_schedule_exactly_on_a_boundary_fires_one_period_later() -> None:
    now = datetime(2026, 1, 1, 12, 40, tzinfo=timezone.utc).timestamp()

    assert next_write_s(Schedule(TimeGranularity.Minute, 10), now) == now + 600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", Schedule(TimeGranularity.Minute, 10)),
        ("1h", Schedule(TimeGranularity.Hour, 1)),
        ("30s", Schedule(TimeGranularity.Second, 30)),
        ("2d", Schedule(TimeGranularity.Day, 2)),
        ("never", None),
    ],
)
def test_write_every_format(text: str, expected: Schedule | None) -> None:
    assert Schedule.parse(text) == expected


@pytest.mark.parametrize("text", ["", "10", "m", "10 minutes", "-5m", "0m"])
def test_write_every_rejects_other_formats(text: str) -> None:
    with pytest.raises(ValueError, match="write schedule|interval"):
        Schedule.parse(text)


def test_granularity_parses_names_in_any_case() -> None:
    assert TimeGranularity.parse("HOUR") is TimeGranularity.Hour
    with pytest.raises(ValueError, match="expected one of: second, minute, hour, day"):
        TimeGranularity.parse("week")
