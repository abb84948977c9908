"""The profiles of one dataset, one per bucket (and segment), fed in batches.

A commit reads every row staged since the last one, across all buckets of the dataset,
column by column once (:mod:`._columns`), then updates each bucket's metrics from its
slice of every column (:mod:`._tracking`). A batch whylogs might reject, and every
dataset whose schema needs whylogs' own ``track`` (segments, validators, UDFs, custom
metrics), take the careful route: fresh whylogs profiles, halved around a bad row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from whylogs.core import DatasetProfile, DatasetProfileView, DatasetSchema
from whylogs.core.metrics.column_metrics import ColumnCountsMetric
from whylogs.core.metrics.metric_components import IntegralComponent
from whylogs.core.view.column_profile_view import ColumnProfileView

from ._columns import (
    BatchColumn,
    null_piece,
    nulls,
    prepare_frame,
    prepare_rows,
    rows_to_frame,
)
from ._profile import BucketProfile, Segment
from ._segments import check_segments, is_segmented, split_segments
from ._tracking import ColumnState, ProfileTemplate, RawColumn, supports
from ._view import BatchedProfileView

__all__ = ["DatasetAggregate", "TimedFrame"]

_logger = logging.getLogger(__name__)

Row = dict[Any, Any]
RejectCallback = Callable[[str, int, str], None]


def _utc(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)


class TimedFrame:
    """A DataFrame whose rows carry their own event time in ``column``; the worker
    splits it into buckets."""

    __slots__ = ("frame", "column")

    def __init__(self, frame: pd.DataFrame, column: str) -> None:
        self.frame = frame
        self.column = column

    def __len__(self) -> int:
        return len(self.frame)


class _Bucket:
    """What one bucket holds: rows waiting to be tracked, and what was tracked."""

    __slots__ = (
        "start_ms",
        "staged_rows",
        "staged_frames",
        "columns",
        "extras",
        "created",
        "batched_rows",
        "profile",
        "segment_profiles",
        "views",
        "rows",
    )

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.staged_rows: list[Row] = []
        self.staged_frames: list[pd.DataFrame] = []
        # The metrics fed below whylogs' track, when the schema allows it.
        self.columns: dict[str, RawColumn | ColumnState] | None = None
        self.extras: dict[str, ColumnState] = {}
        self.created: datetime | None = None
        self.batched_rows = 0
        # A whylogs profile, for schemas that need whylogs' own track.
        self.profile: DatasetProfile | None = None
        self.segment_profiles: dict[Segment, DatasetProfile] = {}
        # Views from tracking that had to be isolated, keyed by segment ((), if none).
        self.views: dict[Segment, list[DatasetProfileView]] = {}
        self.rows = 0


class DatasetAggregate:
    """Profiles of one dataset id, keyed by bucket start.

    Rows are staged per bucket and tracked together by :meth:`commit`, so each column
    is read once per batch rather than once per row or per bucket. Every bucket stays
    open until :meth:`finish` (a write): a replay of many buckets with no write
    schedule holds all of them, about 100 KB per bucket of twenty columns.

    :param on_reject: called with ``(dataset_id, rows, reason)`` for rows that whylogs
        could not track; the other rows of their batch are kept.
    :param unit_ms: the bucket length, to split frames logged with a timestamp column.
    """

    def __init__(
        self,
        dataset_id: str,
        schema: DatasetSchema | None,
        on_reject: RejectCallback,
        unit_ms: int = 3_600_000,
    ) -> None:
        self.dataset_id = dataset_id
        self.schema = schema
        self._segmented = is_segmented(schema)
        if self._segmented:
            assert schema is not None
            check_segments(schema)
        self._template = ProfileTemplate(schema) if supports(schema) else None
        self._on_reject = on_reject
        self._unit_ms = unit_ms
        self._buckets: dict[int, _Bucket] = {}
        # Frames spanning several buckets: (frame, bucket starts, row bounds).
        self._split_frames: list[tuple[pd.DataFrame, np.ndarray, np.ndarray]] = []
        self.staged = 0

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    def _bucket(self, start_ms: int) -> _Bucket:
        bucket = self._buckets.get(start_ms)
        if bucket is None:
            bucket = self._buckets[start_ms] = _Bucket(start_ms)
        return bucket

    def stage_rows(self, start_ms: int, rows: list[Row]) -> None:
        self._bucket(start_ms).staged_rows.extend(rows)
        self.staged += len(rows)

    def stage_frame(self, start_ms: int, frame: pd.DataFrame | TimedFrame) -> None:
        """Stage a frame for the bucket at ``start_ms``; a :class:`TimedFrame` goes to the
        buckets of its rows' own times, and rows without a readable time to ``start_ms``."""
        if isinstance(frame, TimedFrame):
            self._stage_timed(frame, start_ms)
            return
        self._bucket(start_ms).staged_frames.append(frame)
        self.staged += len(frame)

    def _stage_timed(self, timed: TimedFrame, fallback_ms: int) -> None:
        frame = timed.frame
        try:
            starts = event_times_ms(frame[timed.column], fallback_ms)
        except Exception as exc:
            _logger.warning(
                "The timestamp column %r of a DataFrame logged to dataset %s could not be "
                "read (%s); its %d rows go to the bucket of the log() call. Log event times "
                "as epoch milliseconds, datetimes or ISO 8601 strings.",
                timed.column,
                self.dataset_id,
                _reason(exc),
                len(frame),
            )
            starts = np.full(len(frame), fallback_ms, dtype=np.int64)
        starts -= starts % self._unit_ms
        if len(starts) > 1 and (np.diff(starts) < 0).any():
            order = np.argsort(starts, kind="stable")
            frame, starts = frame.take(order), starts[order]
        changes = np.flatnonzero(np.diff(starts)) + 1
        bounds = np.concatenate(([0], changes, [len(starts)])).astype(np.int64)
        bucket_starts = starts[bounds[:-1]]
        if self._template is None:
            for index, start in enumerate(bucket_starts.tolist()):
                piece = frame.iloc[bounds[index] : bounds[index + 1]]
                self._bucket(start).staged_frames.append(piece)
        else:
            for start in bucket_starts.tolist():
                self._bucket(start)
            self._split_frames.append((frame, bucket_starts, bounds))
        self.staged += len(frame)

    def commit(self) -> int:
        """Track every staged row. Returns the number of rows tracked."""
        if self._template is None:
            tracked = 0
            for bucket in self._buckets.values():
                rows, bucket.staged_rows = bucket.staged_rows, []
                frames, bucket.staged_frames = bucket.staged_frames, []
                tracked += self._commit_careful(bucket, rows, frames, careful=False)
            self.staged = 0
            return tracked

        buckets = [bucket for bucket in self._buckets.values() if bucket.staged_rows]
        tracked = self._commit_rows(buckets) if buckets else 0
        for bucket in self._buckets.values():
            frames, bucket.staged_frames = bucket.staged_frames, []
            for frame in frames:
                tracked += self._commit_frame([bucket], frame, np.array([0, len(frame)]))
        split, self._split_frames = self._split_frames, []
        for frame, starts, bounds in split:
            tracked += self._commit_frame(
                [self._buckets[s] for s in starts.tolist()], frame, bounds
            )
        self.staged = 0
        return tracked

    def finish(self) -> Iterator[BucketProfile]:
        """Hand over one profile per bucket and segment, and forget them. Rows still
        staged are tracked first."""
        self.commit()
        buckets, self._buckets = self._buckets, {}
        for bucket in buckets.values():
            yield from self._profiles(bucket)

    # The batch route

    def _commit_rows(self, buckets: list[_Bucket]) -> int:
        rows: list[Row] = []
        bounds = [0]
        for bucket in buckets:
            rows.extend(bucket.staged_rows)
            bucket.staged_rows = []
            bounds.append(len(rows))
        try:
            columns = prepare_rows(rows, bounds)
        except Exception:
            tracked = 0
            for index, bucket in enumerate(buckets):
                part = rows[bounds[index] : bounds[index + 1]]
                tracked += self._commit_careful(bucket, part, [], careful=True)
            return tracked
        return self._apply(buckets, columns, bounds)

    def _commit_frame(
        self, buckets: list[_Bucket], frame: pd.DataFrame, bounds: Sequence[int] | np.ndarray
    ) -> int:
        try:
            columns = prepare_frame(frame, bounds)
        except Exception:
            tracked = 0
            for index, bucket in enumerate(buckets):
                piece = frame.iloc[bounds[index] : bounds[index + 1]]
                count = self._track_frame(bucket, piece, False, None)
                bucket.rows += count
                tracked += count
            return tracked
        return self._apply(buckets, columns, bounds)

    def _apply(
        self, buckets: list[_Bucket], columns: list[BatchColumn], bounds: Sequence[int] | np.ndarray
    ) -> int:
        template = self._template
        assert template is not None
        tracked = 0
        for index, bucket in enumerate(buckets):
            rows = int(bounds[index + 1] - bounds[index])
            if not rows:
                continue
            if bucket.columns is None:
                bucket.columns = template.new_profile()
                bucket.created = datetime.now(timezone.utc)
            try:
                for column in columns:
                    self._update(bucket, column, index, rows, bucket.batched_rows)
                # A column of the bucket that this batch lacks is null in all its rows.
                if len(bucket.columns) > len(columns):
                    names = {column.name for column in columns}
                    for name, current in bucket.columns.items():
                        if name not in names and current.seen:
                            _fill(current, rows)
            except Exception as exc:
                # Prepared plain values do not make whylogs' standard metrics raise; if
                # they ever do, the columns updated before this one keep these rows.
                _logger.debug("batch update failed", exc_info=True)
                self._on_reject(self.dataset_id, rows, f"internal error: {_reason(exc)}")
                continue
            bucket.rows += rows
            bucket.batched_rows += rows
            tracked += rows
        return tracked

    def _update(
        self, bucket: _Bucket, column: BatchColumn, index: int, rows: int, earlier: int
    ) -> None:
        assert bucket.columns is not None and self._template is not None
        name = column.name
        current = bucket.columns.get(name)
        plain = column.is_plain
        found = column.plain(index) if plain else column.piece(index)
        # A key missing from a row counts as null in that row, whichever batch the
        # bucket's other rows came in: a column met late is first filled with the nulls
        # of the bucket's earlier rows.
        if found is None:
            if current is not None and current.seen:
                _fill(current, rows)
            return
        dtype, values = found
        if current is None:
            spec = self._template.spec(name, dtype)
            current = spec.new_column() if plain else spec.new_state()
            bucket.columns[name] = current
        if not current.seen:
            current.seen = True
            if earlier:
                _fill(current, earlier)
        if type(current) is RawColumn:
            if plain:
                current.update(values)
                return
            # Values whylogs had to preprocess itself go to whylogs metrics of the same
            # spec, merged with the raw column when the profile is read.
            extra = bucket.extras.get(name)
            if extra is None:
                extra = bucket.extras[name] = current.spec.new_state()
            extra.update(values)
        elif plain:
            current.update(column.piece(index)[1])  # type: ignore[index]
        else:
            current.update(values)

    # The careful route

    def _commit_careful(
        self, bucket: _Bucket, rows: list[Row], frames: list[pd.DataFrame], careful: bool
    ) -> int:
        """Track with whylogs' own ``track``; ``careful`` even for plain values."""
        tracked = 0
        if rows:
            try:
                frame, plain = rows_to_frame(rows)
            except Exception:
                tracked += self._track_isolated(bucket, rows)
            else:
                tracked += self._track_frame(bucket, frame, plain and not careful, rows)
        for frame in frames:
            tracked += self._track_frame(bucket, frame, False, None)
        bucket.rows += tracked
        return tracked

    def _new_profile(self, start_ms: int) -> DatasetProfile:
        schema = self.schema.copy() if self.schema is not None else None
        return DatasetProfile(schema=schema, dataset_timestamp=_utc(start_ms))

    def _track_frame(
        self, bucket: _Bucket, frame: pd.DataFrame, plain: bool, rows: list[Row] | None
    ) -> int:
        if plain and not self._segmented:
            # Plain values cannot make whylogs raise, so track straight into the bucket.
            if bucket.profile is None:
                bucket.profile = self._new_profile(bucket.start_ms)
            bucket.profile.track(pandas=frame)
            return len(frame)
        if plain:
            # A schema's filter or UDF may raise on any value, so split before touching
            # the bucket; what fails goes the isolated way below.
            try:
                parts = self._split(frame)
            except Exception:
                parts = None
            if parts is not None:
                self._track_parts(bucket.start_ms, parts, bucket.segment_profiles)
                return len(frame)
        try:
            views = self._track_into_new(bucket.start_ms, frame)
        except Exception as exc:
            if rows is None:
                rows = frame.to_dict("records") if len(frame) > 1 else []
                if not rows:
                    self._on_reject(self.dataset_id, len(frame), _reason(exc))
                    return 0
            return self._track_isolated(bucket, rows)
        self._keep(bucket, views)
        return len(frame)

    def _track_into_new(
        self, start_ms: int, frame: pd.DataFrame
    ) -> dict[Segment, DatasetProfileView]:
        """Track into fresh profiles, so a failure leaves the bucket untouched."""
        if not self._segmented:
            profile = self._new_profile(start_ms)
            profile.track(pandas=frame)
            return {(): profile.view()}
        profiles: dict[Segment, DatasetProfile] = {}
        self._track_parts(start_ms, self._split(frame), profiles)
        return {segment: profile.view() for segment, profile in profiles.items()}

    def _split(self, frame: pd.DataFrame) -> list[tuple[Segment, pd.DataFrame]]:
        assert self.schema is not None
        # As whylogs does: UDF columns exist before segmenting, and are not computed twice.
        frame, _ = self.schema._run_udfs(frame, None)
        return list(split_segments(self.schema, frame))

    def _track_parts(
        self,
        start_ms: int,
        parts: list[tuple[Segment, pd.DataFrame]],
        profiles: dict[Segment, DatasetProfile],
    ) -> None:
        """Track each segment's rows into its profile in ``profiles``, adding those missing."""
        for segment, rows in parts:
            profile = profiles.get(segment)
            if profile is None:
                profile = profiles[segment] = self._new_profile(start_ms)
            profile.track(pandas=rows, execute_udfs=False)

    def _track_isolated(self, bucket: _Bucket, rows: list[Row]) -> int:
        """Find the rows whylogs rejects by halving the batch, and keep the rest."""
        try:
            frame, _ = rows_to_frame(rows)
            views = self._track_into_new(bucket.start_ms, frame)
        except Exception as exc:
            if len(rows) == 1:
                self._on_reject(self.dataset_id, 1, _reason(exc))
                return 0
            middle = len(rows) // 2
            return self._track_isolated(bucket, rows[:middle]) + self._track_isolated(
                bucket, rows[middle:]
            )
        self._keep(bucket, views)
        return len(rows)

    def _keep(self, bucket: _Bucket, views: dict[Segment, DatasetProfileView]) -> None:
        for segment, view in views.items():
            bucket.views.setdefault(segment, []).append(view)

    def _profiles(self, bucket: _Bucket) -> Iterator[BucketProfile]:
        if bucket.rows == 0:
            return
        views = {segment: list(found) for segment, found in bucket.views.items()}
        if bucket.profile is not None:
            views.setdefault((), []).insert(0, bucket.profile.view())
        for segment, profile in bucket.segment_profiles.items():
            views.setdefault(segment, []).insert(0, profile.view())
        if bucket.columns is not None:
            assert bucket.created is not None
            columns: dict[str, Any] = dict(bucket.columns)
            for name, extra in bucket.extras.items():
                columns[name] = columns[name].view().merge(extra.view())
            view = BatchedProfileView(
                columns=columns,
                dataset_timestamp=_utc(bucket.start_ms),
                creation_timestamp=bucket.created,
            )
            views.setdefault((), []).insert(0, view)
        for segment, parts in views.items():
            merged = parts[0]
            for part in parts[1:]:
                merged = merged.merge(part)
            if len(parts) > 1:
                merged = _pad_missing_columns(merged, parts)
            yield BucketProfile(self.dataset_id, bucket.start_ms, merged, segment)


def _rows_of(view: Any) -> int:
    counts = [
        column.get_metric("counts").n.value
        for column in view.get_columns().values()
        if column is not None and column.get_metric("counts") is not None
    ]
    return max(counts, default=0)


def _pad_missing_columns(merged: Any, parts: list[Any]) -> Any:
    """Count as nulls the rows of the parts that lack a column, so that every column of
    the bucket counts every row, as within one part. Parts come from different routes
    (rows tracked below whylogs, rows isolated after a rejection, whylogs' own track)."""
    total = sum(_rows_of(part) for part in parts)
    padding: dict[str, ColumnProfileView] = {}
    for name, column in merged.get_columns().items():
        counts = column.get_metric("counts") if column is not None else None
        if counts is None or counts.n.value >= total:
            continue
        missing = total - counts.n.value
        padding[name] = ColumnProfileView(
            metrics={
                "counts": ColumnCountsMetric(
                    n=IntegralComponent(missing), null=IntegralComponent(missing)
                )
            }
        )
    if not padding:
        return merged
    pad = DatasetProfileView(
        columns=padding,
        dataset_timestamp=merged.dataset_timestamp,
        creation_timestamp=merged.creation_timestamp,
    )
    return merged.merge(pad)


def _fill(column: RawColumn | ColumnState, count: int) -> None:
    if type(column) is RawColumn:
        column.update(null_piece(count))
    else:
        column.update(nulls(count))  # type: ignore[arg-type]


def event_times_ms(column: pd.Series, fallback_ms: int) -> np.ndarray:
    """The column as epoch milliseconds: numbers are epoch milliseconds, aware times are
    converted to UTC, naive times and strings without an offset are read as UTC, and
    missing or unreadable values become ``fallback_ms``."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        good = np.isfinite(values)
        millis = np.full(len(values), fallback_ms, dtype=np.int64)
        millis[good] = np.floor(values[good]).astype(np.int64)
        return millis
    moments = pd.DatetimeIndex(pd.to_datetime(column, utc=True, errors="coerce"))
    millis = moments.asi8 // 1_000_000
    millis[moments.isna()] = fallback_ms
    return millis


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
