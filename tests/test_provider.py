"""The provider, the global logger and what log() accepts."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

import profiletel
from conftest import RecordingExporter
from profiletel import (
    BatchProfileProcessor,
    ProfileProvider,
    ProviderShutdownError,
    TimeGranularity,
    _provider,
)

HOUR_MS = 3_600_000


def _provider_with(exporter: RecordingExporter, **options: object) -> ProfileProvider:
    processor = BatchProfileProcessor(
        [exporter], write_schedule=None, dead_letter_dir=options.pop("dead_letter_dir", None),
        **options,  # type: ignore[arg-type]
    )
    return ProfileProvider(processors=[processor])


def _rows_by_bucket(exporter: RecordingExporter) -> dict[int, int]:
    counts: dict[int, int] = {}
    for profile in exporter.profiles:
        counts[profile.bucket_start_ms] = counts.get(profile.bucket_start_ms, 0) + profile.row_count
    return counts


def test_logger_taken_before_configure_delivers_its_rows(tmp_path: Path) -> None:
    log = profiletel.get_logger("orders")
    log.log({"amount": 1.5}, timestamp_ms=HOUR_MS)
    log.log({"amount": 2.5}, timestamp_ms=HOUR_MS + 1)
    exporter = RecordingExporter()

    provider = profiletel.configure(
        exporters=[exporter], write_schedule=None, dead_letter_dir=tmp_path
    )
    log.log({"amount": 3.5}, timestamp_ms=HOUR_MS + 2)
    assert provider.force_flush(timeout_s=10)

    assert _rows_by_bucket(exporter) == {HOUR_MS: 3}
    assert [p.dataset_id for p in exporter.profiles] == ["orders"]


def test_rows_beyond_the_pre_configure_buffer_are_counted_and_warned_once(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    log = profiletel.get_logger("early")
    limit = _provider.PRE_CONFIGURE_BUFFER_ROWS
    with caplog.at_level(logging.WARNING, logger="profiletel"):
        log.log([{"n": i} for i in range(limit)], timestamp_ms=0)
        for i in range(5):
            log.log({"n": i}, timestamp_ms=0)
    overflow_warnings = [r for r in caplog.records if "further rows are dropped" in r.message]
    assert len(overflow_warnings) == 1
    assert _provider._global.overflowed_rows == 5

    exporter = RecordingExporter()
    provider = profiletel.configure(
        exporters=[exporter], write_schedule=None, dead_letter_dir=tmp_path
    )
    assert provider.force_flush(timeout_s=10)
    assert _rows_by_bucket(exporter) == {0: limit}
    assert (provider.status().rows_overflowed, provider.status().rows_dropped) == (5, 5)


def test_configure_again_flushes_the_old_provider_and_loggers_follow_the_new_one(
    tmp_path: Path,
) -> None:
    first, second = RecordingExporter(), RecordingExporter()
    log = profiletel.get_logger("orders")
    old = profiletel.configure(exporters=[first], write_schedule=None, dead_letter_dir=tmp_path)
    log.log({"x": 1}, timestamp_ms=0)

    new = profiletel.configure(exporters=[second], write_schedule=None, dead_letter_dir=tmp_path)
    log.log({"x": 2}, timestamp_ms=0)
    new.force_flush(timeout_s=10)

    assert old.is_shut_down
    assert profiletel.get_provider() is new
    assert _rows_by_bucket(first) == {0: 1}
    assert _rows_by_bucket(second) == {0: 1}


def test_zero_is_a_real_timestamp_and_none_means_now(recording: RecordingExporter) -> None:
    provider = _provider_with(recording)
    log = provider.get_logger("t")
    before = int(datetime.now(timezone.utc).timestamp() * 1000)

    log.log({"x": 1}, timestamp_ms=0)
    log.log({"x": 2})
    after = int(datetime.now(timezone.utc).timestamp() * 1000)
    provider.shutdown(timeout_s=10)

    zero_bucket, now_bucket = sorted(_rows_by_bucket(recording))
    assert zero_bucket == 0
    assert now_bucket in {before - before % HOUR_MS, after - after % HOUR_MS}


def test_aware_datetimes_are_bucketed_by_their_instant(recording: RecordingExporter) -> None:
    provider = _provider_with(recording, aggregate_by=TimeGranularity.Day)
    moment = pd.Timestamp("2013-01-01 23:30", tz="America/New_York")  # 04:30 UTC next day

    provider.get_logger("t").log({"x": 1}, timestamp_ms=moment.to_pydatetime())
    provider.shutdown(timeout_s=10)

    assert list(_rows_by_bucket(recording)) == [
        int(datetime(2013, 1, 2, tzinfo=timezone.utc).timestamp() * 1000)
    ]


def test_naive_datetime_is_rejected_with_the_reason(recording: RecordingExporter) -> None:
    log = _provider_with(recording).get_logger("t")
    with pytest.raises(ValueError, match="naive datetime"):
        log.log({"x": 1}, timestamp_ms=datetime(2020, 1, 1))


@pytest.mark.parametrize("bad", [2, "row", b"row", ({"x": 1},), None, [1, 2]])
def test_wrong_container_raises_type_error_in_the_caller(
    recording: RecordingExporter, bad: object
) -> None:
    log = _provider_with(recording).get_logger("t")
    with pytest.raises(TypeError, match="row|list"):
        log.log(bad)


def test_list_of_rows_and_dataframe_count_as_rows(recording: RecordingExporter) -> None:
    provider = _provider_with(recording)
    log = provider.get_logger("t")

    log.log([{"x": 1}, {"x": 2}, {"x": 3}], timestamp_ms=0)
    log.log(pd.DataFrame({"x": [4, 5]}), timestamp_ms=0)
    provider.shutdown(timeout_s=10)

    assert _rows_by_bucket(recording) == {0: 5}


def test_sync_log_returns_after_tracking(recording: RecordingExporter) -> None:
    provider = _provider_with(recording)
    log = provider.get_logger("t")

    log.log({"x": 1}, timestamp_ms=0, sync=True)

    assert provider.status().processors[0].datasets["t"].rows_tracked == 1


def test_log_after_shutdown_raises(recording: RecordingExporter) -> None:
    provider = _provider_with(recording)
    log = provider.get_logger("t")
    assert provider.shutdown(timeout_s=10)

    with pytest.raises(ProviderShutdownError, match="shut down"):
        log.log({"x": 1})
    assert provider.shutdown(timeout_s=1) is False  # second call: warns, does nothing


def test_empty_dataset_id_is_rejected(recording: RecordingExporter) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        profiletel.get_logger("")


def test_environment_configures_what_arguments_leave_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFILETEL_EXPORTERS", "local")
    monkeypatch.setenv("PROFILETEL_AGGREGATE_BY", "day")
    monkeypatch.setenv("PROFILETEL_WRITE_EVERY", "never")
    monkeypatch.setenv("PROFILETEL_LOCAL_DIR", str(tmp_path))

    provider = profiletel.configure()
    processor = provider.processors[0]
    profiletel.get_logger("env").log({"x": 1}, timestamp_ms=0)
    assert provider.shutdown(timeout_s=10)

    assert processor.aggregate_by is TimeGranularity.Day
    assert processor.write_schedule is None
    assert processor.dead_letters.directory == tmp_path / ".dead-letter"
    written = [p.name for p in (tmp_path / "env").iterdir()]
    assert len(written) == 1
    assert written[0].startswith("env.19700101T000000Z.")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PROFILETEL_AGGREGATE_BY", "week", "PROFILETEL_AGGREGATE_BY"),
        ("PROFILETEL_WRITE_EVERY", "often", "PROFILETEL_WRITE_EVERY"),
        ("PROFILETEL_EXPORTERS", "nowhere", "no exporter named 'nowhere'"),
    ],
)
def test_invalid_environment_fails_at_configure_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(profiletel.ConfigurationError, match=message):
        profiletel.configure()
