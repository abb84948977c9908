"""Time buckets and the wall-clock write schedule, always in UTC."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

__all__ = ["TimeGranularity", "Schedule", "bucket_start_ms", "next_write_s", "now_ms"]


class TimeGranularity(enum.Enum):
    """The length of a bucket or of a schedule step.

    ``Second`` is accepted only by :class:`Schedule` (short jobs and tests); buckets
    are a minute, an hour or a day.
    """

    Second = "Second"
    Minute = "Minute"
    Hour = "Hour"
    Day = "Day"

    @property
    def milliseconds(self) -> int:
        return _UNIT_MS[self]

    @classmethod
    def parse(cls, value: str | TimeGranularity) -> TimeGranularity:
        """Accept an enum member or its name in any case (``"hour"``, ``"Hour"``).

        :raises ValueError: naming the accepted values.
        """
        if isinstance(value, TimeGranularity):
            return value
        for member in cls:
            if member.value.lower() == str(value).strip().lower():
                return member
        accepted = ", ".join(m.value.lower() for m in cls)
        raise ValueError(f"unknown time granularity {value!r}; expected one of: {accepted}")


_UNIT_MS: Final = {
    TimeGranularity.Second: 1_000,
    TimeGranularity.Minute: 60_000,
    TimeGranularity.Hour: 3_600_000,
    TimeGranularity.Day: 86_400_000,
}

BUCKET_GRANULARITIES: Final = (TimeGranularity.Minute, TimeGranularity.Hour, TimeGranularity.Day)


@dataclass(frozen=True)
class Schedule:
    """Write every ``interval`` ``cadence`` units, aligned to the UTC wall clock.

    ``Schedule(TimeGranularity.Minute, 10)`` writes at :00, :10, :20 and so on.
    """

    cadence: TimeGranularity
    interval: int

    def __post_init__(self) -> None:
        if not isinstance(self.cadence, TimeGranularity):
            raise TypeError(f"cadence must be a TimeGranularity, got {self.cadence!r}")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int):
            raise TypeError(f"interval must be an int, got {self.interval!r}")
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1, got {self.interval}")

    @property
    def period_ms(self) -> int:
        return self.cadence.milliseconds * self.interval

    @classmethod
    def parse(cls, text: str) -> Schedule | None:
        """Parse ``PROFILETEL_WRITE_EVERY``: ``<n><unit>`` with unit ``s``, ``m``, ``h``
        or ``d`` (``10m``, ``1h``), or ``never`` for "only on flush and shutdown".

        :raises ValueError: naming the accepted format.
        """
        value = text.strip().lower()
        if value in ("never", "none", "off"):
            return None
        units = {"s": TimeGranularity.Second, "m": TimeGranularity.Minute,
                 "h": TimeGranularity.Hour, "d": TimeGranularity.Day}
        if len(value) >= 2 and value[-1] in units and value[:-1].isdigit():
            return cls(units[value[-1]], int(value[:-1]))
        raise ValueError(
            f"invalid write schedule {text!r}; expected <number><unit> with unit s, m, h or d "
            "(for example 10m or 1h), or 'never'"
        )

    def __str__(self) -> str:
        return f"{self.interval}{self.cadence.value[0].lower()}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def bucket_start_ms(timestamp_ms: int, granularity: TimeGranularity) -> int:
    """Floor an epoch-millisecond timestamp to the start of its UTC bucket.

    Epoch time has no time zone and POSIX days are all 86,400 s long, so flooring
    the integer is exact in UTC whatever the machine's ``TZ`` says.
    """
    unit = _UNIT_MS[granularity]
    return timestamp_ms - timestamp_ms % unit


def next_write_s(schedule: Schedule, now_s: float) -> float:
    """Return the first wall-clock instant after ``now_s`` that is a multiple of the
    schedule's period, in epoch seconds."""
    period_s = schedule.period_ms / 1000
    return (now_s // period_s + 1) * period_s


def iso_utc(timestamp_ms: int) -> str:
    """``2013-01-01T05:00:00Z`` for a bucket start."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
