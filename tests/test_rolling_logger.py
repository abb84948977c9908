"""whylogs' MultiDatasetRollingLogger API, as profiletel provides it on its own pipeline.

The first tests follow the "behaviour to reproduce" list of issue 3, one test per item.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from whylogs.api.logger.result_set import SegmentedResultSet, ViewResultSet
from whylogs.api.writer import Writer
from whylogs.core import DatasetProfileView, DatasetSchema
from whylogs.core.segmentation_partition import (
    ColumnMapperFunction,
    SegmentationPartition,
    segment_on_column,
)
from whylogs.core.view.segmented_dataset_profile_view import SegmentedDatasetProfileView

from conftest import RecordingExporter
from profiletel import (
    BucketProfile,
    CloseMessage,
    DatasetProfileContainer,
    DeadLetterStore,
    FlushMessage,
    LoggerStatus,
    MultiDatasetRollingLogger,
    ProviderShutdownError,
    Schedule,
    StatusMessage,
    TimeGranularity,
    TrackMessage,
)

TS = 1677207714000  # 2023-02-24T03:01:54Z
HOUR_MS = 3_600_000
ROW = {"col1": 1, "col2": "b"}


class SeedWriter(Writer):
    """A plain whylogs writer, as code written for whylogs passes them: it keeps what it
    is given, or raises on every call when ``fail`` is set."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.write_count = 0
        self.received: list[Any] = []

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        self.write_count += 1
        if self.fail:
            raise RuntimeError("I'm bad")
        self.received.append(file)
        return True, ""

    def option(self, **kwargs: Any) -> SeedWriter:
        return self


@pytest.fixture
def dead_letters(tmp_path: Path) -> Path:
    return tmp_path / "dead-letter"


@pytest.fixture
def make_logger(dead_letters: Path) -> Iterator[Any]:
    """Build loggers that write dead letters under the test's folder; close what the
    test left open."""
    made: list[MultiDatasetRollingLogger] = []

    def make(**kwargs: Any) -> MultiDatasetRollingLogger:
        kwargs.setdefault("dead_letter_dir", str(dead_letters))
        logger = MultiDatasetRollingLogger(**kwargs)
        made.append(logger)
        return logger

    yield make
    for logger in made:
        if not logger._closed:
            logger.close()


def _status(
    timestamps: int, profiles: int, caches: int, writers: int, pending: int
) -> LoggerStatus:
    return LoggerStatus(
        dataset_timestamps=timestamps,
        dataset_profiles=profiles,
        segment_caches=caches,
        writers=writers,
        pending_writables=pending,
    )


def _n(view: DatasetProfileView, column: str) -> int:
    return int(view.get_column(column).get_metric("counts").n.value)


# The behaviour to reproduce


def test_three_rows_at_one_timestamp_make_one_profile_written_once_per_writer(make_logger):
    seed, recording = SeedWriter(), RecordingExporter()
    logger = make_logger(writers=[seed, recording])

    for _ in range(3):
        logger.log(ROW, timestamp_ms=TS)

    assert logger.status() == _status(1, 1, 0, 2, 0)
    logger.close()
    assert seed.write_count == 1
    assert recording.calls == 1
    assert isinstance(seed.received[0], DatasetProfileView)
    assert _n(seed.received[0], "col1") == 3
    assert isinstance(recording.profiles[0], BucketProfile)
    assert recording.profiles[0].row_count == 3


def test_a_list_of_rows_counts_as_rows_not_as_one_value(make_logger):
    seed = SeedWriter()
    logger = make_logger(writers=[seed])

    logger.log([ROW, ROW, ROW, ROW], timestamp_ms=TS)

    assert logger.status() == _status(1, 1, 0, 1, 0)
    logger.close()
    assert seed.write_count == 1
    view = seed.received[0]
    assert sorted(view.get_columns()) == ["col1", "col2"]
    assert _n(view, "col1") == 4


@pytest.mark.parametrize("sync", [True, False])
def test_logging_something_that_is_not_rows_raises_type_error_in_the_caller(make_logger, sync):
    logger = make_logger(writers=[SeedWriter()])

    with pytest.raises(TypeError, match="got int"):
        logger.log(2, timestamp_ms=TS, sync=sync)  # type: ignore[arg-type]

    assert logger.status() == _status(0, 0, 0, 1, 0)


def test_every_call_after_close_raises(make_logger):
    seed = SeedWriter()
    logger = make_logger(writers=[seed])
    logger.log([ROW, ROW], timestamp_ms=TS)
    logger.close()

    with pytest.raises(ProviderShutdownError):
        logger.log([ROW, ROW], timestamp_ms=TS)
    with pytest.raises(ProviderShutdownError):
        logger.log(ROW, timestamp_ms=TS, sync=True)
    with pytest.raises(ProviderShutdownError):
        logger.flush()
    with pytest.raises(ProviderShutdownError):
        logger.send(FlushMessage())
    assert seed.write_count == 1


def test_creating_and_closing_several_loggers_in_a_row_never_hangs(dead_letters):
    finished: list[int] = []

    def create_and_close() -> None:
        for index in range(5):
            logger = MultiDatasetRollingLogger(dead_letter_dir=str(dead_letters))
            if index % 2:
                logger.log(ROW)
                logger.status()
            logger.close()
            finished.append(index)

    thread = threading.Thread(target=create_and_close, daemon=True)
    thread.start()
    thread.join(timeout=60)

    assert not thread.is_alive(), "creating and closing loggers hung"
    assert finished == [0, 1, 2, 3, 4]


def test_flushing_after_each_row_writes_each_time_and_holds_nothing(make_logger):
    seed = SeedWriter()
    logger = make_logger(writers=[seed])

    for _ in range(3):
        logger.log(ROW, timestamp_ms=TS)
        logger.flush()

    assert logger.status() == _status(0, 0, 0, 1, 0)
    assert seed.write_count == 3
    logger.close()
    assert seed.write_count == 3


def test_a_failing_writer_is_retried_at_each_write_and_its_profiles_dead_lettered(
    make_logger, dead_letters
):
    bad = SeedWriter(fail=True)
    logger = make_logger(writers=[bad], aggregate_by=TimeGranularity.Hour)
    hours = [TS - HOUR_MS, TS - 2 * HOUR_MS, TS - 3 * HOUR_MS]
    for stamp in hours:
        logger.log(ROW, stamp)

    assert logger.status() == _status(3, 3, 0, 1, 0)
    assert bad.write_count == 0

    logger.flush()
    assert logger.status() == _status(0, 0, 0, 1, 3)
    assert bad.write_count == 3

    logger.close()
    assert bad.write_count == 9
    assert logger.status() == _status(0, 0, 0, 1, 0)
    letters = list(DeadLetterStore(dead_letters))
    assert len(letters) == 3
    assert {letter.info["exporter"] for letter in letters} == {"SeedWriter"}
    assert {letter.info["attempts"] for letter in letters} == {3}
    assert sorted(letter.load().bucket_start_ms for letter in letters) == sorted(
        stamp - stamp % HOUR_MS for stamp in hours
    )


def test_a_healthy_writer_gets_every_profile_while_another_fails_and_close_waits_for_both(
    make_logger, dead_letters
):
    bad, good = SeedWriter(fail=True), SeedWriter()
    logger = make_logger(writers=[bad, good])
    for hours_back in (1, 2, 3):
        logger.log(ROW, TS - hours_back * HOUR_MS)

    logger.flush()
    assert good.write_count == 3
    assert len(good.received) == 3
    assert logger.status() == _status(0, 0, 0, 2, 3)

    logger.close()
    assert bad.write_count == 9
    assert good.write_count == 3
    assert len(DeadLetterStore(dead_letters)) == 3


def test_one_segmented_column_gives_one_cache_and_one_profile_per_value(make_logger):
    schema = DatasetSchema(segments=segment_on_column("col1"))
    seed = SeedWriter()
    logger = make_logger(writers=[seed], schema=schema)
    rows = [
        {"col1": 1, "col2": "b", "col3": 0.1},
        {"col1": 2, "col2": "b", "col3": 0.2},
        {"col1": 3, "col2": "b", "col3": 0.2},
    ]

    logger.log(rows, timestamp_ms=TS, sync=True)
    assert logger.status() == _status(1, 0, 1, 1, 0)

    logger.flush()
    assert logger.status() == _status(0, 0, 0, 1, 0)
    assert seed.write_count == 3
    assert all(isinstance(item, SegmentedDatasetProfileView) for item in seed.received)
    partition = schema.segments["col1"]
    assert {item.partition.id for item in seed.received} == {partition.id}
    assert sorted(item.segment.key for item in seed.received) == [("1",), ("2",), ("3",)]
    assert all(_n(item.profile_view, "col3") == 1 for item in seed.received)


def test_segmented_profiles_stay_pending_for_a_failing_writer(make_logger):
    bad = SeedWriter(fail=True)
    logger = make_logger(writers=[bad], schema=DatasetSchema(segments=segment_on_column("col1")))
    logger.log([{"col1": value} for value in (1, 2, 3)], timestamp_ms=TS, sync=True)

    logger.flush()

    assert logger.status() == _status(0, 0, 0, 1, 3)
    assert bad.write_count == 3


def test_segmenting_on_two_columns_names_each_segment_by_both_values(make_logger):
    partition = SegmentationPartition(
        name="col1,col3", mapper=ColumnMapperFunction(col_names=["col1", "col3"])
    )
    schema = DatasetSchema(segments={partition.name: partition})
    seed, recording = SeedWriter(), RecordingExporter()
    logger = make_logger(writers=[seed, recording], schema=schema)

    logger.log({"col1": 1, "col2": "b", "col3": 0.1}, timestamp_ms=TS, sync=True)
    logger.log({"col1": 1, "col2": "c", "col3": 0.2}, timestamp_ms=TS, sync=True)
    assert logger.status() == _status(1, 0, 1, 2, 0)
    logger.flush()

    assert sorted(item.segment.key for item in seed.received) == [("1", "0.1"), ("1", "0.2")]
    assert {item.segment.parent_id for item in seed.received} == {partition.id}
    assert sorted(profile.segment for profile in recording.profiles) == [
        (("col1", "1"), ("col3", "0.1")),
        (("col1", "1"), ("col3", "0.2")),
    ]


# The rest of the surface


def test_the_writers_default_is_immutable_and_each_logger_keeps_its_own_copy(make_logger):
    default = inspect.signature(MultiDatasetRollingLogger).parameters["writers"].default
    assert default == ()
    given: list[Writer] = []
    first = make_logger(writers=given)
    second = make_logger()

    given.append(SeedWriter())

    assert first.status().writers == 0
    assert second.status().writers == 0
    assert first._writers is not second._writers


def test_the_keyword_schedule_form_is_accepted_and_a_schedule_under_five_minutes_is_not(
    make_logger,
):
    make_logger(write_schedule=Schedule(cadence=TimeGranularity.Minute, interval=5))
    make_logger(write_schedule=Schedule(cadence=TimeGranularity.Hour, interval=1))
    make_logger(write_schedule=None)

    with pytest.raises(ValueError, match="five minutes"):
        MultiDatasetRollingLogger(write_schedule=Schedule(TimeGranularity.Minute, 4))
    with pytest.raises(ValueError, match="five minutes"):
        MultiDatasetRollingLogger(write_schedule=Schedule(TimeGranularity.Second, 600))


def test_whylogs_own_time_granularity_and_schedule_are_read_by_name(make_logger):
    time_util = pytest.importorskip("whylogs.api.logger.experimental.logger.actor.time_util")
    logger = make_logger(
        aggregate_by=time_util.TimeGranularity.Minute,
        write_schedule=time_util.Schedule(cadence=time_util.TimeGranularity.Hour, interval=2),
    )

    assert logger.processor.aggregate_by is TimeGranularity.Minute
    assert logger.processor.write_schedule == Schedule(TimeGranularity.Hour, 2)
    with pytest.raises(ValueError, match="unknown time granularity .Month."):
        MultiDatasetRollingLogger(aggregate_by=time_util.TimeGranularity.Month)


def test_rows_fall_in_buckets_of_the_aggregation_length(make_logger):
    start = TS - TS % HOUR_MS
    by_hour = make_logger(aggregate_by=TimeGranularity.Hour)
    by_minute = make_logger(aggregate_by=TimeGranularity.Minute)

    for logger in (by_hour, by_minute):
        logger.log(ROW, timestamp_ms=start + 5 * 60_000)
        logger.log(ROW, timestamp_ms=start + 55 * 60_000)

    assert by_hour.status().dataset_timestamps == 1
    assert by_minute.status().dataset_timestamps == 2


def test_send_takes_every_message_type(make_logger):
    seed = SeedWriter()
    logger = make_logger(writers=[seed])
    tracked: Future[None] = Future()
    refused: Future[None] = Future()
    status: Future[LoggerStatus] = Future()

    logger.send(TrackMessage(data=[ROW, ROW], timestamp_ms=TS, result=tracked))
    logger.send(TrackMessage(data=2, timestamp_ms=TS, result=refused))  # type: ignore[arg-type]
    assert tracked.result(timeout=30) is None
    assert isinstance(refused.exception(timeout=30), TypeError)
    logger.send(StatusMessage(result=status))
    assert status.result(timeout=30) == _status(1, 1, 0, 1, 0)

    logger.send(FlushMessage())
    assert seed.write_count == 1
    logger.send(CloseMessage())
    with pytest.raises(ProviderShutdownError):
        logger.send(TrackMessage(data=ROW, timestamp_ms=TS, result=None))


def test_send_refuses_what_is_not_a_message(make_logger):
    logger = make_logger()

    with pytest.raises(TypeError, match="got dict"):
        logger.send({"col1": 1})  # type: ignore[arg-type]


def test_the_thread_surface_describes_the_processor_worker(make_logger):
    logger = make_logger()
    worker = logger.processor.worker
    assert worker is not None

    assert logger.name == worker.name
    assert logger.ident == worker.ident
    assert logger.daemon is True
    assert logger.is_alive() is True
    with pytest.raises(RuntimeError, match="started once"):
        logger.start()
    logger.join(timeout=0.01)
    assert logger.is_alive() is True

    logger.close()
    logger.join(timeout=30)
    logger.run()
    assert logger.is_alive() is False


def test_closing_twice_only_warns(make_logger, caplog):
    logger = make_logger()
    logger.close()

    logger.close()

    assert "close() was called twice" in caplog.text


def test_a_logger_dead_letters_under_the_dataset_id_it_was_given(make_logger, dead_letters):
    logger = make_logger(writers=[SeedWriter(fail=True)], dataset_id="orders")
    logger.log(ROW, timestamp_ms=TS)

    logger.close()

    letters = list(DeadLetterStore(dead_letters))
    assert [letter.info["dataset_id"] for letter in letters] == ["orders"]
    assert letters[0].profile_path.parent == dead_letters / "SeedWriter" / "orders"


# DatasetProfileContainer


def test_a_container_without_segments_gives_one_profile_at_its_timestamp():
    container = DatasetProfileContainer(TS, None)

    container.track(ROW)
    container.track([ROW, ROW])
    container.track(pd.DataFrame({"col1": [5, 6]}))
    result = container.to_result_set()

    assert isinstance(result, ViewResultSet)
    view = result.view()
    assert _n(view, "col1") == 5
    # profiletel's rule, unlike whylogs': the frame's two rows lack col2, so they are
    # col2's nulls (docs/migration.md).
    assert _n(view, "col2") == 5
    assert view.get_column("col2").get_metric("counts").null.value == 2
    assert int(view.dataset_timestamp.timestamp() * 1000) == TS
    assert container._has_segments() is False


def test_a_container_with_segments_gives_a_segmented_result_set():
    schema = DatasetSchema(segments=segment_on_column("col1"))
    container = DatasetProfileContainer(TS, schema)

    container.track([{"col1": value, "col2": "b"} for value in (1, 2, 2)])
    result = container.to_result_set()

    assert isinstance(result, SegmentedResultSet)
    assert container._has_segments() is True
    assert sorted(segment.key for segment in result.segments()) == [("1",), ("2",)]
    counts = {
        segment.key: _n(result.view(segment), "col2") for segment in result.segments()
    }
    assert counts == {("1",): 1, ("2",): 2}
    assert len(result.get_writables()) == 2


def test_a_container_refuses_data_that_is_not_rows_and_tracking_after_its_result():
    container = DatasetProfileContainer(TS, None)
    with pytest.raises(TypeError, match="got int"):
        container.track(2)  # type: ignore[arg-type]
    container.track(ROW)

    container.to_result_set()

    with pytest.raises(RuntimeError, match="result set"):
        container.track(ROW)


def test_an_empty_container_gives_an_empty_profile_at_its_timestamp():
    result = DatasetProfileContainer(TS, None).to_result_set()

    view = result.view()
    assert view.get_columns() == {}
    assert int(view.dataset_timestamp.timestamp() * 1000) == TS


def test_whylogs_local_writer_writes_plain_and_segmented_profiles_unchanged(make_logger, tmp_path):
    from whylogs.api.writer.local import LocalWriter

    plain_dir, segment_dir = tmp_path / "plain", tmp_path / "segments"
    plain = make_logger(writers=[LocalWriter(base_dir=str(plain_dir))])
    segmented = make_logger(
        writers=[LocalWriter(base_dir=str(segment_dir))],
        schema=DatasetSchema(segments=segment_on_column("col1")),
    )
    for logger in (plain, segmented):
        logger.log([{"col1": 1}, {"col1": 2}], timestamp_ms=TS)

        assert logger.flush() is True

    written = sorted(plain_dir.iterdir())
    assert len(written) == 1
    assert _n(DatasetProfileView.read(str(written[0])), "col1") == 2
    assert len(list(segment_dir.iterdir())) == 2
