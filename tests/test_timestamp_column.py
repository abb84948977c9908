"""``get_logger(..., timestamp_column=...)``: a DataFrame spanning many buckets is split
by each row's own time, on the worker."""

from __future__ import annotations

import pandas as pd
import pytest

import profiletel

HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "when": pd.to_datetime(
                [START_MS + 1, START_MS + 2 * HOUR_MS, START_MS + 5, START_MS + HOUR_MS, None],
                unit="ms",
                utc=True,
            ),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )


def test_a_frame_spanning_three_hours_becomes_one_profile_per_hour(recording):
    provider = profiletel.configure(exporters=[recording], aggregate_by="hour", write_schedule=None)
    logger = profiletel.get_logger("orders", timestamp_column="when")

    logger.log(_frame(), timestamp_ms=START_MS + 2 * HOUR_MS + 7)
    assert provider.shutdown(timeout_s=30)

    rows = {p.bucket_start_ms: p.row_count for p in recording.profiles}
    assert rows == {START_MS: 2, START_MS + HOUR_MS: 1, START_MS + 2 * HOUR_MS: 2}


def test_epoch_millisecond_numbers_are_read_as_event_times(recording):
    provider = profiletel.configure(exporters=[recording], aggregate_by="hour", write_schedule=None)
    frame = pd.DataFrame({"ts": [START_MS, START_MS + HOUR_MS], "x": ["a", "b"]})

    profiletel.get_logger("events", timestamp_column="ts").log(frame)
    assert provider.shutdown(timeout_s=30)

    assert sorted(p.bucket_start_ms for p in recording.profiles) == [START_MS, START_MS + HOUR_MS]


def test_a_frame_without_the_timestamp_column_is_refused_in_the_callers_thread(recording):
    profiletel.configure(exporters=[recording], write_schedule=None)
    logger = profiletel.get_logger("orders", timestamp_column="missing")

    with pytest.raises(ValueError, match="no timestamp column 'missing'"):
        logger.log(_frame())


def test_a_timestamp_column_that_is_not_a_name_is_refused():
    with pytest.raises(TypeError, match="timestamp_column must be a column name"):
        profiletel.get_logger("orders", timestamp_column=3)  # type: ignore[arg-type]
