"""BatchProfileProcessor: the queue, the aggregation into buckets, and the write schedule."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pandas as pd
from whylogs.api.writer import Writer
from whylogs.core import DatasetSchema

from ._buckets import DatasetAggregate
from ._config import DEFAULT_WRITE_SCHEDULE, check_bucket_granularity, dead_letter_dir_from_env
from ._deadletter import DeadLetterStore
from ._errors import ProviderShutdownError
from ._export import DEFAULT_MAX_ATTEMPTS, ExportChannel
from ._profile import BucketProfile
from ._threads import block_stop_signals
from ._time import Schedule, TimeGranularity, next_write_s

__all__ = ["BatchProfileProcessor", "ProcessorStatus", "DatasetStatus", "Dataset"]

_logger = logging.getLogger(__name__)

QueuePolicy = Literal["drop", "block"]

DEFAULT_MAX_QUEUE_ROWS: Final = 200_000
DEFAULT_MAX_QUEUE_BYTES: Final = 256 * 1024 * 1024
DEFAULT_BATCH_ROWS: Final = 10_000
# The worker tracks staged rows at the latest this long after they arrive.
_MAX_STAGE_S: Final = 1.0
_POLL_S: Final = 0.1
_DROP_WARNING_EVERY_S: Final = 10.0
# Queue items the worker takes per step (rows, lists or frames).
_DRAIN_ITEMS: Final = 25_000
_BLOCK_POLL_S: Final = 0.005


class Dataset:
    """A dataset id and its schema, shared by every logger of that id in one provider."""

    __slots__ = ("dataset_id", "schema", "__weakref__")

    def __init__(self, dataset_id: str, schema: DatasetSchema | None) -> None:
        self.dataset_id = dataset_id
        self.schema = schema

    def __repr__(self) -> str:
        return f"Dataset({self.dataset_id!r})"


@dataclass(frozen=True)
class DatasetStatus:
    """Counts for one dataset id since the processor started."""

    rows_received: int
    rows_tracked: int
    rows_dropped: int
    rows_rejected: int
    buckets: int
    last_rejection: str | None = None


@dataclass(frozen=True)
class ProcessorStatus:
    """A snapshot of one processor, for health checks and tests."""

    running: bool
    worker_alive: bool
    queued_items: int
    buckets: int
    pending_exports: int
    profiles_exported: int
    dead_lettered: int
    profiles_lost: int
    rows_dropped: int
    rows_rejected: int
    writes: int
    exporters: tuple[str, ...]
    datasets: dict[str, DatasetStatus] = field(default_factory=dict)
    queued_rows: int = 0
    queued_bytes: int = 0
    worker_restarts: int = 0


class _Marker:
    """A request placed in the queue: write now, and say when the profiles are handed
    to the exporters."""

    __slots__ = ("done", "tickets")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.tickets: list[tuple[ExportChannel, int]] = []


class _Counts:
    __slots__ = ("received", "tracked", "dropped", "rejected", "last_rejection")

    def __init__(self) -> None:
        self.received = self.tracked = self.dropped = self.rejected = 0
        self.last_rejection: str | None = None


_live_processors: weakref.WeakSet[BatchProfileProcessor] = weakref.WeakSet()


class BatchProfileProcessor:
    """Aggregates logged rows into one whylogs profile per dataset and bucket, and hands
    the finished profiles to its exporters on a schedule aligned to the UTC wall clock.

    :param exporters: whylogs ``Writer`` instances; each runs behind the retry middleware.
    :param aggregate_by: the bucket length: minute, hour or day.
    :param write_schedule: when to write; ``None`` writes only on flush and shutdown.
    :param dead_letter_dir: where undeliverable profiles go; defaults to
        ``PROFILETEL_DEAD_LETTER_DIR``, else ``<PROFILETEL_LOCAL_DIR>/.dead-letter``.
    :param max_queue_rows: rows waiting for the worker before ``queue_full`` applies.
    :param max_queue_bytes: bytes of DataFrames waiting for the worker before
        ``queue_full`` applies, estimated by :func:`frame_nbytes`. A single list or frame
        larger than a limit is still accepted when nothing else is queued.
    :param queue_full: ``"drop"`` (the default: never stall the caller) counts and drops
        the row; ``"block"`` waits up to ``block_timeout_s`` for room, then drops.
    :param batch_rows: rows of one bucket tracked together in one whylogs call.
    :param max_attempts: export attempts per profile before it is dead-lettered.
    """

    def __init__(
        self,
        exporters: Sequence[Writer],
        aggregate_by: TimeGranularity = TimeGranularity.Hour,
        write_schedule: Schedule | None = DEFAULT_WRITE_SCHEDULE,
        dead_letter_dir: str | os.PathLike[str] | None = None,
        *,
        max_queue_rows: int = DEFAULT_MAX_QUEUE_ROWS,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        queue_full: QueuePolicy = "drop",
        block_timeout_s: float = 1.0,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        for exporter in exporters:
            if not isinstance(exporter, Writer):
                raise TypeError(
                    f"exporters must be whylogs Writer instances, got {type(exporter).__name__}"
                )
        if not isinstance(aggregate_by, TimeGranularity):
            raise TypeError(f"aggregate_by must be a TimeGranularity, got {aggregate_by!r}")
        check_bucket_granularity(aggregate_by)
        if write_schedule is not None and not isinstance(write_schedule, Schedule):
            raise TypeError(f"write_schedule must be a Schedule or None, got {write_schedule!r}")
        if queue_full not in ("drop", "block"):
            raise ValueError(f"queue_full must be 'drop' or 'block', got {queue_full!r}")
        counts = {"max_queue_rows": max_queue_rows, "max_queue_bytes": max_queue_bytes,
                  "batch_rows": batch_rows, "max_attempts": max_attempts}
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be a whole number, got {value!r}")
        if isinstance(block_timeout_s, bool) or not isinstance(block_timeout_s, (int, float)):
            raise TypeError(f"block_timeout_s must be a number of seconds, got {block_timeout_s!r}")
        if min(max_queue_rows, max_queue_bytes, batch_rows, max_attempts) < 1:
            raise ValueError(
                "max_queue_rows, max_queue_bytes, batch_rows and max_attempts must be at least 1"
            )
        if not block_timeout_s >= 0:
            raise ValueError(f"block_timeout_s must be >= 0, got {block_timeout_s!r}")

        self.aggregate_by = aggregate_by
        self.write_schedule = write_schedule
        self.dead_letters = DeadLetterStore(
            dead_letter_dir if dead_letter_dir is not None else dead_letter_dir_from_env()
        )
        self._unit_ms = aggregate_by.milliseconds
        self._max_queue_rows = max_queue_rows
        self._max_queue_bytes = max_queue_bytes
        self._queue_full = queue_full
        self._block_timeout_s = block_timeout_s
        self._batch_rows = batch_rows
        self._channels = [
            ExportChannel(exporter, self.dead_letters, max_attempts=max_attempts)
            for exporter in exporters
        ]
        self._init_state()
        _live_processors.add(self)
        self._start_worker()

    def _init_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._bulk_rows = 0  # rows queued inside lists and frames, beyond one per item
        self._queued_bytes = 0  # frame_nbytes() of the frames in the queue
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._aggregates: dict[Dataset, DatasetAggregate] = {}
        self._counts: dict[str, _Counts] = {}
        self._staged_since: float | None = None
        self._writes = 0
        self._dropped_since_warning = 0
        self._last_drop_warning = 0.0
        self._shutdown = False
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None
        self._worker_restarts = 0
        # Futures of log(sync=True) calls, so that a dying worker cannot leave one unanswered.
        self._sync_results: weakref.WeakSet[Future] = weakref.WeakSet()
        self._next_write = (
            next_write_s(self.write_schedule, time.time()) if self.write_schedule else None
        )

    @property
    def exporters(self) -> list[Writer]:
        return [channel.exporter for channel in self._channels]

    @property
    def worker(self) -> threading.Thread | None:
        """The thread that tracks queued rows (a new one replaces it if it dies)."""
        return self._worker

    def barrier(self) -> Future:
        """A future that completes once every row submitted before this call is tracked
        (or counted as rejected). It is already complete after :meth:`shutdown`, which
        tracks everything queued."""
        done: Future = Future()
        if self._shutdown and self._stopping:
            done.set_result(None)
            return done
        self._queue.append(done)
        self._wake.set()
        if self._worker is None or not self._worker.is_alive():
            self._recover_worker()
        return done

    # The caller's side

    def submit(
        self, dataset: Dataset, timestamp_ms: int, data: Any, rows: int, result: Future | None
    ) -> None:
        """Queue ``data`` (a row dict, a list of them, or a DataFrame) for ``dataset``.

        Meant for :class:`DatasetLogger`, which has already checked and copied ``data``.

        :raises ProviderShutdownError: after :meth:`shutdown`.
        """
        if self._shutdown:
            raise ProviderShutdownError(
                f"cannot log to dataset {dataset.dataset_id!r}: the processor has shut down"
            )
        if self._worker_error is not None:
            self._recover_worker()
        nbytes = 0 if type(data) is dict or type(data) is list else frame_nbytes(data)
        if not self._has_room(rows, nbytes) and not self._make_room(rows, nbytes):
            self._drop(dataset.dataset_id, rows, result)
            return
        item = (dataset, timestamp_ms, data, result)
        queue = self._queue
        if rows == 1 and type(data) is dict and result is None:
            queue.append(item)
        else:
            # Under the lock, so that the counts and the sync futures match the queue.
            with self._lock:
                self._bulk_rows += rows - 1
                self._queued_bytes += nbytes
                if result is not None:
                    self._sync_results.add(result)
                queue.append(item)
        if (result is not None or len(queue) >= self._batch_rows) and not self._wake.is_set():
            self._wake.set()

    def _has_room(self, rows: int, nbytes: int) -> bool:
        # An item over a limit on its own still goes into an empty queue: the caller
        # holds it in memory already, and refusing it would drop it every time.
        queued = len(self._queue) + self._bulk_rows
        if queued and queued + rows > self._max_queue_rows:
            return False
        queued_bytes = self._queued_bytes
        return not (queued_bytes and queued_bytes + nbytes > self._max_queue_bytes)

    def _make_room(self, rows: int, nbytes: int) -> bool:
        self._wake.set()
        if self._queue_full != "block":
            return False
        deadline = time.monotonic() + self._block_timeout_s
        while time.monotonic() < deadline:
            time.sleep(_BLOCK_POLL_S)
            if self._has_room(rows, nbytes):
                return True
            if self._worker_error is not None:
                self._recover_worker()
        return False

    def _drop(self, dataset_id: str, rows: int, result: Future | None) -> None:
        now = time.monotonic()
        with self._lock:
            self._count(dataset_id).dropped += rows
            self._dropped_since_warning += rows
            warn = now - self._last_drop_warning >= _DROP_WARNING_EVERY_S
            if warn:
                dropped, self._dropped_since_warning = self._dropped_since_warning, 0
                self._last_drop_warning = now
        if warn:
            _logger.warning(
                "The profiling queue is full (%d rows or %d bytes of DataFrames): dropped %d "
                "row(s) since the last warning; status() counts them per dataset. Raise "
                "max_queue_rows or max_queue_bytes, use queue_full='block', or log less often.",
                self._max_queue_rows, self._max_queue_bytes, dropped,
            )
        if result is not None:
            result.set_exception(
                BufferError(f"the profiling queue is full; {rows} row(s) were dropped")
            )

    def _count(self, dataset_id: str) -> _Counts:
        counts = self._counts.get(dataset_id)
        if counts is None:
            counts = self._counts[dataset_id] = _Counts()
        return counts

    # The worker's side

    def _start_worker(self) -> None:
        self._worker_error = None
        self._worker = threading.Thread(target=self._work, name="profiletel-processor", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        block_stop_signals()
        self._run()
        if self._worker_error is not None:
            self._fail_orphaned_results()

    def _fail_orphaned_results(self) -> None:
        """The worker died: fail the ``log(sync=True)`` calls whose rows it held, so that
        they raise now instead of timing out. Those still queued wait for the next worker."""
        with self._lock:
            queued = {
                id(item[3]) for item in self._queue.copy()
                if type(item) is tuple and item[3] is not None
            }
            orphans = [f for f in list(self._sync_results) if id(f) not in queued]
        error = RuntimeError(
            "the profiling worker died while it held these rows; they may be missing from "
            "the profiles"
        )
        for future in orphans:
            # One answered before the worker died keeps its answer.
            with contextlib.suppress(InvalidStateError):
                future.set_exception(error)

    def _recover_worker(self) -> None:
        """The worker died: say so once and start a new one. Rows still queued or staged
        are kept; the next worker tracks them."""
        with self._lock:
            error, worker = self._worker_error, self._worker
            if worker is not None and worker.is_alive():
                return
            self._start_worker()
            if error is None:
                return  # it stopped normally; nothing to report
            self._worker_restarts += 1
        _logger.error(
            "The profiling worker died (%s); a new one was started. Rows still queued were "
            "kept; rows it was tracking at that moment may be missing from the profiles. "
            "Please report this as a bug, with the traceback logged at DEBUG level.",
            f"{type(error).__name__}: {error}",
        )

    def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    self._wake.wait(self._wait_s())
                self._wake.clear()
                self._drain()
                if self._next_write is not None and time.time() >= self._next_write:
                    self._write(None)
                    assert self.write_schedule is not None
                    self._next_write = next_write_s(self.write_schedule, time.time())
                if self._stopping and not self._queue:
                    return
        except BaseException as exc:
            self._worker_error = exc
            _logger.debug("profiling worker failed", exc_info=True)

    def _wait_s(self) -> float:
        wait = _POLL_S
        if self._next_write is not None:
            wait = min(wait, max(0.0, self._next_write - time.time()))
        return wait

    def _drain(self) -> None:
        """Stage everything queued, track what is due, and answer markers."""
        queue = self._queue
        unit = self._unit_ms
        markers: list[_Marker] = []
        futures: list[Future] = []
        groups: dict[tuple[Dataset, int], list[dict]] = {}
        frames: list[tuple[Dataset, int, pd.DataFrame]] = []
        bulk = nbytes = 0
        # A bounded step frees room in the queue sooner for callers that wait for it.
        for _ in range(min(len(queue), _DRAIN_ITEMS)):
            item = queue.popleft()
            if type(item) is not tuple:
                if isinstance(item, Future):
                    futures.append(item)  # a barrier()
                else:
                    markers.append(item)
                continue
            dataset, timestamp_ms, data, result = item
            start = timestamp_ms - timestamp_ms % unit
            if type(data) is dict:
                group = groups.get((dataset, start))
                if group is None:
                    group = groups[(dataset, start)] = []
                group.append(data)
            elif type(data) is list:
                bulk += len(data) - 1
                groups.setdefault((dataset, start), []).extend(data)
            else:
                bulk += len(data) - 1
                nbytes += frame_nbytes(data)
                frames.append((dataset, start, data))
            if result is not None:
                futures.append(result)
        if bulk or nbytes:
            with self._lock:
                self._bulk_rows -= bulk
                self._queued_bytes -= nbytes

        for (dataset, start), rows in groups.items():
            self._aggregate(dataset).stage_rows(start, rows)
            self._count(dataset.dataset_id).received += len(rows)
        for dataset, start, frame in frames:
            self._aggregate(dataset).stage_frame(start, frame)
            self._count(dataset.dataset_id).received += len(frame)
        if (groups or frames) and self._staged_since is None:
            self._staged_since = time.monotonic()

        due = (
            futures
            or markers
            or self._stopping
            or (
                self._staged_since is not None
                and time.monotonic() - self._staged_since >= _MAX_STAGE_S
            )
        )
        self._commit(force=bool(due))
        for result in futures:
            if not result.done():
                result.set_result(None)
        for marker in markers:
            self._write(marker)

    def _aggregate(self, dataset: Dataset) -> DatasetAggregate:
        aggregate = self._aggregates.get(dataset)
        if aggregate is None:
            aggregate = DatasetAggregate(
                dataset.dataset_id, dataset.schema, self._on_reject, unit_ms=self._unit_ms
            )
            with self._lock:
                self._aggregates[dataset] = aggregate
        return aggregate

    def _commit(self, force: bool) -> None:
        for aggregate in self._aggregates.values():
            if aggregate.staged and (force or aggregate.staged >= self._batch_rows):
                self._count(aggregate.dataset_id).tracked += aggregate.commit()
        if force:
            self._staged_since = None

    def _on_reject(self, dataset_id: str, rows: int, reason: str) -> None:
        counts = self._count(dataset_id)
        counts.rejected += rows
        counts.last_rejection = reason
        _logger.warning(
            "whylogs could not track %d row(s) of dataset %s (%s); they were left out and "
            "counted as rejected in status(). The other rows of the batch were kept.",
            rows, dataset_id, reason,
        )

    def _write(self, marker: _Marker | None) -> None:
        """Turn every bucket into profiles, hand them to every channel, start a round."""
        self._commit(force=True)
        profiles: list[BucketProfile] = []
        for aggregate in list(self._aggregates.values()):
            profiles.extend(aggregate.finish())
        self._writes += 1
        for channel in self._channels:
            if profiles:
                channel.add(profiles)
            ticket = channel.request_round()
            if marker is not None:
                marker.tickets.append((channel, ticket))
        if marker is not None:
            marker.done.set()

    # Flush, shutdown and status

    def force_flush(self, timeout_s: float = 30) -> bool:
        """Write every bucket now and wait for one export round.

        :returns: ``True`` if every profile was delivered within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        if self._shutdown:
            return False
        return self._flush(deadline)

    def _flush(self, deadline: float) -> bool:
        # A profile dead-lettered by this round was not delivered either.
        given_up = self._given_up()
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        recoveries = 0
        while not marker.done.wait(max(0.0, min(_POLL_S, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return False
            worker = self._worker
            if worker is not None and worker.is_alive():
                continue
            # The worker died, perhaps holding the marker: start another and ask again.
            # Twice at most, so that a bug that kills every worker cannot loop here.
            if recoveries == 2:
                return False
            recoveries += 1
            if not any(item is marker for item in self._queue.copy()):
                marker = _Marker()
                self._queue.append(marker)
            self._recover_worker()
            self._wake.set()
        rounds_done = all(
            channel.wait_round(ticket, deadline) for channel, ticket in marker.tickets
        )
        return (
            rounds_done
            and all(channel.pending == 0 for channel in self._channels)
            and self._given_up() == given_up
        )

    def _given_up(self) -> int:
        return sum(channel.dead_lettered + channel.lost for channel in self._channels)

    def shutdown(self, timeout_s: float = 30) -> bool:
        """Write everything, retry failed exports until ``timeout_s`` runs out, and
        dead-letter what is still undelivered. Safe to call twice.

        :returns: ``True`` if every profile this processor ever wrote was delivered,
            none dead-lettered or lost.
        """
        deadline = time.monotonic() + timeout_s
        if self._shutdown:
            _logger.warning("shutdown() was called twice; the second call does nothing.")
            return False
        self._shutdown = True
        writes = self._writes
        self._flush(deadline)
        # Rows the worker has not turned into profiles by now are lost at exit.
        written = self._writes > writes
        if self._dropped_since_warning:
            _logger.warning(
                "%d more row(s) were dropped on a full profiling queue since the last "
                "warning. Raise max_queue_rows or max_queue_bytes if this happens often.",
                self._dropped_since_warning,
            )
            self._dropped_since_warning = 0
        self._stopping = True
        self._wake.set()

        backoff = 0.1
        while any(channel.pending for channel in self._channels):
            delays = [d for d in (c.retry_delay_s() for c in self._channels) if d is not None]
            pause = max(backoff, min(delays, default=0.0))
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            backoff = min(backoff * 2, 2.0)
            tickets = [(c, c.request_round()) for c in self._channels if c.pending]
            for channel, ticket in tickets:
                channel.wait_round(ticket, deadline)

        for channel in self._channels:
            if channel.pending:
                channel.dead_letter_remaining("shutdown timed out before delivery")
            channel.close()
        if self._worker is not None:
            self._worker.join(max(0.0, min(1.0, deadline - time.monotonic())))
        return written and self._given_up() == 0

    def status(self) -> ProcessorStatus:
        with self._lock:
            aggregates = list(self._aggregates.values())
            counts = {name: c for name, c in self._counts.items()}
            # Counts a pending flush request as a row too: close enough for a health check.
            queued_rows = len(self._queue) + self._bulk_rows
        buckets_by_dataset: dict[str, int] = {}
        for aggregate in aggregates:
            buckets_by_dataset[aggregate.dataset_id] = (
                buckets_by_dataset.get(aggregate.dataset_id, 0) + aggregate.bucket_count
            )
        datasets = {
            name: DatasetStatus(
                rows_received=c.received,
                rows_tracked=c.tracked,
                rows_dropped=c.dropped,
                rows_rejected=c.rejected,
                buckets=buckets_by_dataset.get(name, 0),
                last_rejection=c.last_rejection,
            )
            for name, c in counts.items()
        }
        worker = self._worker
        return ProcessorStatus(
            running=not self._shutdown,
            worker_alive=worker is not None and worker.is_alive(),
            queued_items=len(self._queue),
            buckets=sum(buckets_by_dataset.values()),
            pending_exports=sum(c.pending for c in self._channels),
            profiles_exported=sum(c.exported for c in self._channels),
            dead_lettered=sum(c.dead_lettered for c in self._channels),
            profiles_lost=sum(c.lost for c in self._channels),
            rows_dropped=sum(c.dropped for c in counts.values()),
            rows_rejected=sum(c.rejected for c in counts.values()),
            writes=self._writes,
            exporters=tuple(c.name for c in self._channels),
            datasets=datasets,
            queued_rows=queued_rows,
            queued_bytes=self._queued_bytes,
            worker_restarts=self._worker_restarts,
        )

    def _reset_after_fork(self) -> None:
        # The child must not export what the parent holds (the parent does), and the
        # parent's threads do not exist here.
        self._init_state()
        for channel in self._channels:
            channel.reset_after_fork()
        self._start_worker()


def reset_processors_after_fork() -> None:
    """In a forked child: give every running processor a fresh worker and empty state.
    Called by the one fork hook, in :mod:`profiletel._lifecycle`."""
    for processor in list(_live_processors):
        if not processor._shutdown:
            processor._reset_after_fork()


def frame_nbytes(frame: pd.DataFrame) -> int:
    """The bytes a queued DataFrame counts against ``max_queue_bytes``: eight per cell,
    which is what numeric and datetime columns take and what an object column takes in
    pointers (its strings are not measured, since doing so costs about as much as
    profiling them). ``memory_usage()`` would be exact for narrower dtypes, but it costs
    the caller milliseconds per call on a fresh copy.
    """
    # A frame logged with a timestamp column travels wrapped in a TimedFrame.
    frame = getattr(frame, "frame", frame)
    rows, columns = frame.shape
    return 8 * rows * (columns + 1)
