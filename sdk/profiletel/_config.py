"""Every environment variable profiletel reads, with its default, in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from ._errors import ConfigurationError
from ._time import BUCKET_GRANULARITIES, Schedule, TimeGranularity

PROFILETEL_EXPORTERS: Final = "PROFILETEL_EXPORTERS"
PROFILETEL_AGGREGATE_BY: Final = "PROFILETEL_AGGREGATE_BY"
PROFILETEL_WRITE_EVERY: Final = "PROFILETEL_WRITE_EVERY"
PROFILETEL_LOCAL_DIR: Final = "PROFILETEL_LOCAL_DIR"
PROFILETEL_DEAD_LETTER_DIR: Final = "PROFILETEL_DEAD_LETTER_DIR"
PROFILETEL_EXIT_TIMEOUT_S: Final = "PROFILETEL_EXIT_TIMEOUT_S"
PROFILETEL_MAX_COLUMNS: Final = "PROFILETEL_MAX_COLUMNS"

DEFAULT_EXPORTERS: Final = ("local",)
DEFAULT_AGGREGATE_BY: Final = TimeGranularity.Hour
DEFAULT_WRITE_SCHEDULE: Final = Schedule(TimeGranularity.Minute, 10)
DEFAULT_LOCAL_DIR: Final = "profiles"
DEAD_LETTER_SUBDIR: Final = ".dead-letter"
DEFAULT_EXIT_TIMEOUT_S: Final = 10.0
# whylogs costs about a millisecond per column per batch (and more for the first batch
# of a profile); a row wider than this is far more likely a bug than a real schema.
DEFAULT_MAX_COLUMNS: Final = 1_000


def _env(environ: Mapping[str, str] | None, name: str) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():
        return None
    return value


def exporters_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    value = _env(environ, PROFILETEL_EXPORTERS)
    if value is None:
        return DEFAULT_EXPORTERS
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise ConfigurationError(
            f"{PROFILETEL_EXPORTERS}={value!r} names no exporter; "
            "expected comma-separated exporter names such as 'local,s3'"
        )
    return names


def aggregate_by_from_env(environ: Mapping[str, str] | None = None) -> TimeGranularity:
    value = _env(environ, PROFILETEL_AGGREGATE_BY)
    if value is None:
        return DEFAULT_AGGREGATE_BY
    try:
        return check_bucket_granularity(TimeGranularity.parse(value))
    except ValueError as exc:
        raise ConfigurationError(f"{PROFILETEL_AGGREGATE_BY}: {exc}") from None


def write_schedule_from_env(environ: Mapping[str, str] | None = None) -> Schedule | None:
    value = _env(environ, PROFILETEL_WRITE_EVERY)
    if value is None:
        return DEFAULT_WRITE_SCHEDULE
    try:
        return Schedule.parse(value)
    except ValueError as exc:
        raise ConfigurationError(f"{PROFILETEL_WRITE_EVERY}: {exc}") from None


def local_dir_from_env(environ: Mapping[str, str] | None = None) -> str:
    return _env(environ, PROFILETEL_LOCAL_DIR) or DEFAULT_LOCAL_DIR


def dead_letter_dir_from_env(environ: Mapping[str, str] | None = None) -> str:
    value = _env(environ, PROFILETEL_DEAD_LETTER_DIR)
    if value is not None:
        return value
    return os.path.join(local_dir_from_env(environ), DEAD_LETTER_SUBDIR)


def exit_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    value = _env(environ, PROFILETEL_EXIT_TIMEOUT_S)
    if value is None:
        return DEFAULT_EXIT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigurationError(
            f"{PROFILETEL_EXIT_TIMEOUT_S}={value!r} is not a number of seconds >= 0"
        )
    return seconds


def max_columns_from_env(environ: Mapping[str, str] | None = None) -> int:
    value = _env(environ, PROFILETEL_MAX_COLUMNS)
    if value is None:
        return DEFAULT_MAX_COLUMNS
    if not value.strip().isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"{PROFILETEL_MAX_COLUMNS}={value!r} is not a whole number of columns >= 1"
        )
    return int(value)


def check_bucket_granularity(granularity: TimeGranularity) -> TimeGranularity:
    if granularity not in BUCKET_GRANULARITIES:
        accepted = ", ".join(g.value.lower() for g in BUCKET_GRANULARITIES)
        raise ValueError(
            f"buckets cannot be {granularity.value.lower()}s long; expected one of: {accepted}"
        )
    return granularity
