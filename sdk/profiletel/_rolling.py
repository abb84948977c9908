"""whylogs' experimental ``MultiDatasetRollingLogger`` API, built on the SDK's pipeline.

Code written against ``whylogs.api.logger.experimental.multi_dataset_logger`` keeps
working once its import names ``profiletel`` instead. The logger here owns a private
:class:`ProfileProvider` with one :class:`BatchProfileProcessor`: rows go through the
processor's queue and aggregation, profiles through its export channels, so the retry
and dead-letter path is the one every other profiletel exporter runs behind. What
differs from whylogs is listed in ``docs/migration.md``.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Generic, TypeVar

import pandas as pd
from whylogs.api.logger.result_set import ResultSet, SegmentedResultSet, ViewResultSet
from whylogs.api.writer import Writer
from whylogs.api.writer.writer import Writable
from whylogs.core import DatasetProfile, DatasetProfileView, DatasetSchema
from whylogs.core.view.segmented_dataset_profile_view import SegmentedDatasetProfileView

from ._buckets import DatasetAggregate
from ._errors import ProviderShutdownError
from ._export import exporter_name
from ._processor import BatchProfileProcessor
from ._profile import BucketProfile
from ._provider import ProfileProvider
from ._segments import check_segments, is_segmented, whylogs_segment
from ._time import Schedule, TimeGranularity

__all__ = [
    "DEFAULT_DATASET_ID",
    "DEFAULT_TIMEOUT_S",
    "CloseMessage",
    "DatasetProfileContainer",
    "FlushMessage",
    "LoggerMessage",
    "LoggerStatus",
    "MessageProcessor",
    "MultiDatasetRollingLogger",
    "PendingWritable",
    "Row",
    "StatusMessage",
    "TrackData",
    "TrackMessage",
]

_logger = logging.getLogger(__name__)

# The dataset id of the profiles a MultiDatasetRollingLogger hands its writers; it names
# their folder in the dead-letter directory.
DEFAULT_DATASET_ID: Final = "rolling-logger"
# How long flush(), status() and close() wait for the worker and the writers.
DEFAULT_TIMEOUT_S: Final = 30.0
DEFAULT_WRITE_SCHEDULE: Final = Schedule(cadence=TimeGranularity.Minute, interval=10)
# whylogs refuses to write more often than this (or on a schedule counted in seconds), and
# so does its stand-in here.
_MIN_WRITE_PERIOD_MS: Final = 5 * 60_000

Row = dict[str, Any]
TrackData = pd.DataFrame | Row | list[Row]


@dataclass
class TrackMessage:
    """Rows to track.

    :param data: a row, a list of rows or a DataFrame.
    :param timestamp_ms: when the rows happened, in epoch milliseconds.
    :param result: if given, completed with ``None`` once the rows are tracked, or with
        the exception that stopped them.
    """

    data: TrackData
    timestamp_ms: int
    result: Future[None] | None


@dataclass
class FlushMessage:
    """Write every bucket now."""


@dataclass
class LoggerStatus:
    """What a :class:`MultiDatasetRollingLogger` holds.

    :param dataset_timestamps: buckets holding rows not yet written.
    :param dataset_profiles: of those, the buckets of an unsegmented schema.
    :param segment_caches: of those, the buckets of a segmented schema.
    :param writers: writers the logger was given.
    :param pending_writables: profiles written but not yet delivered, summed over
        writers; they are tried again at the next write.
    """

    dataset_timestamps: int
    dataset_profiles: int
    segment_caches: int
    writers: int
    pending_writables: int


@dataclass
class StatusMessage:
    """Ask for a :class:`LoggerStatus`, delivered through ``result``."""

    result: Future[LoggerStatus]


@dataclass
class PendingWritable:
    """A profile and the attempts spent on it. Kept for code that imports it: the retry
    state of a :class:`MultiDatasetRollingLogger` lives in the processor's channels."""

    attempts: int
    writable: Writable


class CloseMessage:
    """Close the logger: write everything and wait for the writers."""


LoggerMessage = TrackMessage | FlushMessage | StatusMessage

MessageType = TypeVar("MessageType")


class MessageProcessor(ABC, Generic[MessageType]):
    """Takes messages through :meth:`send` and describes the thread that does the work.

    whylogs' version is a thread of its own with a queue; here the work is done by the
    thread a subclass names in :meth:`_worker_thread` (for the rolling logger, the
    processor's worker), and the thread surface (``name``, ``ident``, ``daemon``,
    :meth:`is_alive`, :meth:`join`, :meth:`run`, :meth:`start`) describes that thread.
    """

    def __init__(self) -> None:
        self._closed = False
        self._close_lock = threading.Lock()

    @abstractmethod
    def _worker_thread(self) -> threading.Thread | None:
        """The thread doing the work, or ``None`` if there is none (yet)."""

    @abstractmethod
    def _process_message(self, message: MessageType | CloseMessage) -> None:
        """Handle one message, in the caller's thread."""

    def send(self, message: MessageType | CloseMessage) -> None:
        """Hand ``message`` over.

        :raises ProviderShutdownError: after :meth:`close` (a second ``CloseMessage``
            only warns).
        """
        if isinstance(message, CloseMessage):
            self.close()
            return
        self._check_open()
        self._process_message(message)

    def close(self) -> None:
        """Finish the work and stop. A second call warns and does nothing."""
        with self._close_lock:
            closed, self._closed = self._closed, True
        if closed:
            _logger.warning("close() was called twice on %s; the second call does nothing.",
                            type(self).__name__)
            return
        self._process_message(CloseMessage())

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderShutdownError(f"this {type(self).__name__} is closed")

    # The thread surface

    @property
    def name(self) -> str:
        worker = self._worker_thread()
        return worker.name if worker is not None else type(self).__name__

    @property
    def ident(self) -> int | None:
        worker = self._worker_thread()
        return worker.ident if worker is not None else None

    @property
    def daemon(self) -> bool:
        worker = self._worker_thread()
        return worker.daemon if worker is not None else True

    def is_alive(self) -> bool:
        worker = self._worker_thread()
        return worker is not None and worker.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the worker ends, which happens once the processor is closed."""
        worker = self._worker_thread()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    def run(self) -> None:
        """The worker runs on its own from construction on, so this only waits for it
        to end, as calling ``run()`` of whylogs' thread returns once it is closed."""
        self.join()

    def start(self) -> None:
        """The worker starts with the object; like a started thread, this raises.

        :raises RuntimeError: always.
        """
        raise RuntimeError("threads can only be started once")


class MultiDatasetRollingLogger(MessageProcessor[LoggerMessage]):
    """Profiles rows per bucket of ``aggregate_by`` and hands the profiles to ``writers``
    on ``write_schedule``, on :meth:`flush` and on :meth:`close`.

    :param aggregate_by: the bucket length: minute, hour or day. whylogs' own
        ``TimeGranularity`` and ``Schedule`` are accepted too, read by name.
    :param write_schedule: when to write: minutes, hours or days, at least five minutes
        apart; ``None`` writes only on :meth:`flush` and :meth:`close`.
    :param schema: a whylogs ``DatasetSchema``; one with segments gives one profile per
        segment and bucket.
    :param writers: whylogs ``Writer`` instances. A profiletel exporter (a writer with
        an ``exporter_name``) receives each :class:`BucketProfile`; any other writer
        receives what whylogs' logger handed it, a ``DatasetProfileView`` or, for a
        segment, a ``SegmentedDatasetProfileView``. The list is copied.
    :param dataset_id: the dataset id of the profiles.
    :param dead_letter_dir: where a profile goes once a writer failed on it three
        times; the SDK's default (``PROFILETEL_DEAD_LETTER_DIR``, else
        ``<PROFILETEL_LOCAL_DIR>/.dead-letter``) if not given.
    :param timeout_s: how long :meth:`flush`, :meth:`status` and :meth:`close` wait.
    :raises ValueError: for a write schedule shorter than five minutes, a bucket length
        other than minute, hour or day, or segments profiletel cannot make.
    :raises TypeError: for a writer that is not a whylogs ``Writer``.
    """

    def __init__(
        self,
        aggregate_by: TimeGranularity = TimeGranularity.Hour,
        write_schedule: Schedule | None = DEFAULT_WRITE_SCHEDULE,
        schema: DatasetSchema | None = None,
        writers: Sequence[Writer] = (),
        *,
        dataset_id: str = DEFAULT_DATASET_ID,
        dead_letter_dir: str | os.PathLike[str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__()
        aggregate_by = _granularity(aggregate_by)
        if write_schedule is not None:
            write_schedule = _schedule(write_schedule)
            too_short = write_schedule.cadence is TimeGranularity.Second or (
                write_schedule.period_ms < _MIN_WRITE_PERIOD_MS
            )
            if too_short:
                raise ValueError(
                    f"write_schedule {write_schedule} is shorter than the minimum of five minutes"
                )
        else:
            _logger.warning(
                "No write schedule was given to MultiDatasetRollingLogger; profiles are written "
                "only by flush() and close(), so call one of them."
            )
        if schema is not None and not isinstance(schema, DatasetSchema):
            raise TypeError(f"schema must be a whylogs DatasetSchema, got {type(schema).__name__}")
        if is_segmented(schema):
            assert schema is not None
            check_segments(schema)
        self._writers = list(writers)
        for writer in self._writers:
            if not isinstance(writer, Writer):
                raise TypeError(f"writers must be whylogs Writer instances, got {writer!r}")
        exporters = [_exporter_for(writer, schema) for writer in self._writers]

        self._timeout_s = timeout_s
        self._segmented = is_segmented(schema)
        self._processor = BatchProfileProcessor(
            exporters, aggregate_by, write_schedule, dead_letter_dir
        )
        self._provider = ProfileProvider([self._processor])
        try:
            self._dataset_logger = self._provider.get_logger(dataset_id, schema=schema)
        except BaseException:
            self._provider.shutdown(timeout_s)
            raise

    @property
    def processor(self) -> BatchProfileProcessor:
        """The processor doing the work, for its :meth:`~BatchProfileProcessor.status`
        and dead letters."""
        return self._processor

    def log(self, data: TrackData, timestamp_ms: int | None = None, sync: bool = False) -> None:
        """Log a row, a list of rows or a DataFrame at ``timestamp_ms`` (now if ``None``).

        :param sync: return once the rows are tracked.
        :raises TypeError: if ``data`` is none of those, whether ``sync`` or not.
        :raises ProviderShutdownError: after :meth:`close`.
        """
        self._check_open()
        self._dataset_logger.log(data, timestamp_ms, sync=sync)

    def flush(self) -> bool:
        """Write every bucket now and wait for one attempt of every writer.

        :returns: ``True`` if every profile was delivered.
        :raises ProviderShutdownError: after :meth:`close`.
        """
        self._check_open()
        return self._processor.force_flush(self._timeout_s)

    def status(self) -> LoggerStatus:
        """What the logger holds once the rows logged before this call are tracked.

        Unlike whylogs', it still answers after :meth:`close`.
        """
        self._processor.barrier().result(self._timeout_s)
        status = self._processor.status()
        return LoggerStatus(
            dataset_timestamps=status.buckets,
            dataset_profiles=0 if self._segmented else status.buckets,
            segment_caches=status.buckets if self._segmented else 0,
            writers=len(self._writers),
            pending_writables=status.pending_exports,
        )

    # whylogs' tests and examples call the private name.
    _status = status

    def _worker_thread(self) -> threading.Thread | None:
        return self._processor.worker

    def _process_message(self, message: LoggerMessage | CloseMessage) -> None:
        if isinstance(message, TrackMessage):
            self._track(message)
        elif isinstance(message, FlushMessage):
            self.flush()
        elif isinstance(message, StatusMessage):
            message.result.set_result(self.status())
        elif isinstance(message, CloseMessage):
            self._provider.shutdown(self._timeout_s)
        else:
            raise TypeError(
                "send() takes a TrackMessage, FlushMessage, StatusMessage or CloseMessage, "
                f"got {type(message).__name__}"
            )

    def _track(self, message: TrackMessage) -> None:
        result = message.result
        if result is None:
            self._dataset_logger.log(message.data, message.timestamp_ms)
            return
        try:
            self._dataset_logger.log(message.data, message.timestamp_ms)
        except Exception as exc:
            result.set_exception(exc)
            return
        self._processor.barrier().add_done_callback(lambda _: _complete(result))


def _granularity(value: Any) -> TimeGranularity:
    """Ours, or whylogs' own ``TimeGranularity`` read by name, so that code passing
    whylogs' enum keeps working after the import change."""
    if isinstance(value, TimeGranularity):
        return value
    if isinstance(value, enum.Enum) and isinstance(value.value, str):
        return TimeGranularity.parse(value.value)
    raise TypeError(f"expected a TimeGranularity, got {value!r}")


def _schedule(value: Any) -> Schedule:
    """Ours, or whylogs' ``Schedule`` (any object with ``cadence`` and ``interval``)."""
    if isinstance(value, Schedule):
        return value
    if hasattr(value, "cadence") and hasattr(value, "interval"):
        return Schedule(cadence=_granularity(value.cadence), interval=value.interval)
    raise TypeError(f"write_schedule must be a Schedule or None, got {value!r}")


def _complete(result: Future[None]) -> None:
    if not result.done():
        result.set_result(None)


class DatasetProfileContainer:
    """The profile of one dataset timestamp: a plain profile, or one per segment when
    ``schema`` has segments. It tracks through the SDK's aggregation, in the caller's
    thread.

    :param dataset_timestamp: the profile's dataset timestamp, in epoch milliseconds.
    """

    def __init__(self, dataset_timestamp: int, schema: DatasetSchema | None) -> None:
        if is_segmented(schema):
            assert schema is not None
            check_segments(schema)
        self._schema = schema
        self._start_ms = int(dataset_timestamp)
        self._active = True
        self._rejections: list[str] = []
        self._aggregate = DatasetAggregate(DEFAULT_DATASET_ID, schema, self._on_reject)

    def _has_segments(self) -> bool:
        return is_segmented(self._schema)

    def track(self, data: TrackData) -> None:
        """Track a row, a list of rows or a DataFrame.

        :raises TypeError: if ``data`` is none of those.
        :raises ValueError: if whylogs could not track some rows; the others are kept.
        :raises RuntimeError: after :meth:`to_result_set`.
        """
        if not self._active:
            raise RuntimeError("this DatasetProfileContainer was turned into a result set")
        if isinstance(data, pd.DataFrame):
            if not data.empty:
                self._aggregate.stage_frame(self._start_ms, data)
        elif isinstance(data, Mapping):
            self._aggregate.stage_rows(self._start_ms, [dict(data)])
        elif isinstance(data, list):
            rows = [_row(item, index) for index, item in enumerate(data)]
            if rows:
                self._aggregate.stage_rows(self._start_ms, rows)
        else:
            raise TypeError(
                "track() takes a row (dict of column name to value), a list of rows or a "
                f"pandas DataFrame, got {type(data).__name__}"
            )
        self._aggregate.commit()
        if self._rejections:
            reasons, self._rejections = self._rejections, []
            raise ValueError(f"whylogs could not track some rows: {'; '.join(reasons)}")

    def _on_reject(self, dataset_id: str, rows: int, reason: str) -> None:
        self._rejections.append(f"{rows} row(s): {reason}")

    def to_result_set(self) -> ResultSet:
        """The profile (a ``ViewResultSet``) or the segments (a ``SegmentedResultSet``)
        of what was tracked. The container tracks nothing after this."""
        self._active = False
        profiles = list(self._aggregate.finish())
        if not self._has_segments():
            if profiles:
                return ViewResultSet(profiles[0].view)
            moment = datetime.fromtimestamp(self._start_ms / 1000, tz=timezone.utc)
            return ViewResultSet(DatasetProfile(self._schema, dataset_timestamp=moment).view())

        assert self._schema is not None
        segments: dict[str, dict[Any, DatasetProfileView | DatasetProfile]] = {}
        for profile in profiles:
            found = whylogs_segment(self._schema, profile.segment)
            assert found is not None, "every segment comes from a partition of the schema"
            segment, partition = found
            segments.setdefault(partition.id, {})[segment] = profile.view
        return SegmentedResultSet(
            segments=segments, partitions=list(self._schema.segments.values())
        )


def _row(item: Any, index: int) -> dict[Any, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(
        f"got a list whose item {index} is a {type(item).__name__}, not a row "
        "(dict of column name to value)"
    )


class _WhylogsWriter(Writer):
    """Runs a plain whylogs writer behind a processor's export channel, handing it the
    whylogs type it expects for each :class:`BucketProfile`."""

    def __init__(self, writer: Writer, schema: DatasetSchema | None) -> None:
        self.writer = writer
        self.exporter_name = exporter_name(writer)
        self._schema = schema

    def write(self, file: Writable, dest: str | None = None, **kwargs: Any) -> Any:
        return self.writer.write(self._writable(file), dest, **kwargs)

    def _writable(self, file: Writable) -> Writable:
        if not isinstance(file, BucketProfile):
            return file
        if file.segment and self._schema is not None:
            found = whylogs_segment(self._schema, file.segment)
            if found is not None:
                segment, partition = found
                return SegmentedDatasetProfileView(
                    profile_view=file.view, segment=segment, partition=partition
                )
        return file.view

    def option(self, **kwargs: Any) -> _WhylogsWriter:
        self.writer.option(**kwargs)
        return self

    def __repr__(self) -> str:
        return f"_WhylogsWriter({self.writer!r})"


def _exporter_for(writer: Writer, schema: DatasetSchema | None) -> Writer:
    if getattr(writer, "exporter_name", None):
        return writer
    return _WhylogsWriter(writer, schema)

