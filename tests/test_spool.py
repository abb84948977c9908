"""Failed profiles beyond a few per exporter wait on disk, in the spool, not in memory."""

from __future__ import annotations

from pathlib import Path

from profiletel import BatchProfileProcessor, TimeGranularity
from profiletel._export import MAX_RETRIES_IN_MEMORY
from profiletel._processor import Dataset
from profiletel._spool import SPOOL_DIRNAME

HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
BUCKETS = MAX_RETRIES_IN_MEMORY + 24


def _processor(exporter, tmp_path: Path) -> BatchProfileProcessor:
    return BatchProfileProcessor(
        [exporter],
        aggregate_by=TimeGranularity.Hour,
        write_schedule=None,
        dead_letter_dir=tmp_path / ".dead-letter",
        max_attempts=100,
    )


def _log_one_row_per_hour(processor: BatchProfileProcessor) -> None:
    dataset = Dataset("spooled", None)
    for hour in range(BUCKETS):
        processor.submit(dataset, START_MS + hour * HOUR_MS, {"hour": hour}, 1, None)


def _spooled(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / SPOOL_DIRNAME).rglob("*.bin"))


def test_failed_profiles_beyond_the_memory_allowance_are_spooled_to_disk(recording, tmp_path):
    recording.fail_times = -1
    processor = _processor(recording, tmp_path)
    _log_one_row_per_hour(processor)

    assert processor.force_flush(timeout_s=30) is False

    assert processor.status().pending_exports == BUCKETS
    assert len(_spooled(tmp_path)) == BUCKETS - MAX_RETRIES_IN_MEMORY
    processor.shutdown(timeout_s=1)


def test_spooled_profiles_are_delivered_once_the_exporter_recovers(recording, tmp_path):
    recording.fail_times = -1
    processor = _processor(recording, tmp_path)
    _log_one_row_per_hour(processor)
    processor.force_flush(timeout_s=30)

    recording.fail_times = 0
    delivered = processor.force_flush(timeout_s=30)

    assert delivered is True
    assert sorted(p.bucket_start_ms for p in recording.profiles) == [
        START_MS + hour * HOUR_MS for hour in range(BUCKETS)
    ]
    assert sum(p.row_count for p in recording.profiles) == BUCKETS
    assert len({p.profile_id for p in recording.profiles}) == BUCKETS
    assert _spooled(tmp_path) == []
    assert processor.shutdown(timeout_s=5) is True
    assert not (tmp_path / SPOOL_DIRNAME).exists()


def test_spooled_profiles_still_undelivered_at_shutdown_are_dead_lettered(recording, tmp_path):
    recording.fail_times = -1
    processor = _processor(recording, tmp_path)
    _log_one_row_per_hour(processor)
    processor.force_flush(timeout_s=30)

    assert processor.shutdown(timeout_s=0.5) is False

    assert len(processor.dead_letters) == BUCKETS
    assert _spooled(tmp_path) == []
    assert processor.status().profiles_lost == 0
