"""The profiles of one dataset, one per bucket (and segment), fed in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from whylogs.api.logger.segment_cache import SegmentCache
from whylogs.api.logger.segment_processing import segment_processing
from whylogs.core import DatasetProfile, DatasetProfileView, DatasetSchema

from ._columns import rows_to_frame, split_by_keys
from ._profile import BucketProfile, Segment

__all__ = ["DatasetAggregate"]

_logger = logging.getLogger(__name__)

Row = dict[Any, Any]
RejectCallback = Callable[[str, int, str], None]


def _utc(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=timezone.utc)


class _Bucket:
    """What one bucket holds: rows waiting to be tracked, and what was tracked."""

    __slots__ = ("start_ms", "staged_rows", "staged_frames", "profile", "views", "rows")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.staged_rows: list[Row] = []
        self.staged_frames: list[pd.DataFrame] = []
        self.profile: DatasetProfile | None = None
        # Views from tracking that had to be isolated, keyed by segment ((), if none).
        self.views: dict[Segment, list[DatasetProfileView]] = {}
        self.rows = 0

    def has_staged(self) -> bool:
        return bool(self.staged_rows or self.staged_frames)


class DatasetAggregate:
    """Profiles of one dataset id, keyed by bucket start.

    Rows are staged per bucket and tracked together by :meth:`commit`, so whylogs is
    called once per batch rather than once per row.

    :param on_reject: called with ``(dataset_id, rows, reason)`` for rows that whylogs
        could not track; the other rows of their batch are kept.
    """

    def __init__(
        self, dataset_id: str, schema: DatasetSchema | None, on_reject: RejectCallback
    ) -> None:
        self.dataset_id = dataset_id
        self.schema = schema
        self._segmented = schema is not None and bool(schema.segments)
        self._on_reject = on_reject
        self._buckets: dict[int, _Bucket] = {}
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

    def stage_frame(self, start_ms: int, frame: pd.DataFrame) -> None:
        self._bucket(start_ms).staged_frames.append(frame)
        self.staged += len(frame)

    def commit(self) -> int:
        """Track every staged row. Returns the number of rows tracked."""
        tracked = 0
        for bucket in self._buckets.values():
            if bucket.has_staged():
                tracked += self._commit_bucket(bucket)
        self.staged = 0
        return tracked

    def finish(self) -> Iterator[BucketProfile]:
        """Hand over one profile per bucket and segment, and forget them. Rows still
        staged are tracked first."""
        self.commit()
        buckets, self._buckets = self._buckets, {}
        for bucket in buckets.values():
            yield from self._profiles(bucket)

    # Tracking

    def _commit_bucket(self, bucket: _Bucket) -> int:
        tracked = 0
        rows, bucket.staged_rows = bucket.staged_rows, []
        frames, bucket.staged_frames = bucket.staged_frames, []
        if rows:
            try:
                groups = split_by_keys(rows)
            except Exception:
                groups = [rows]  # keys that fail to compare: rows_to_frame isolates them
            for group in groups:
                try:
                    frame, plain = rows_to_frame(group)
                except Exception:
                    tracked += self._track_isolated(bucket, list(group))
                else:
                    tracked += self._track_frame(bucket, frame, plain, list(group))
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
        assert self.schema is not None
        cache = SegmentCache(schema=self.schema.copy())
        segment_processing(self.schema, pandas=frame, segment_cache=cache)
        result = cache.get_result_set(dataset_timestamp=_utc(start_ms))
        views: dict[Segment, DatasetProfileView] = {}
        for segment in result.segments() or []:
            view = result.view(segment)
            if view is not None:
                views[_segment_tags(self.schema, segment)] = view
        return views

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
        for segment, parts in views.items():
            merged = parts[0]
            for part in parts[1:]:
                merged = merged.merge(part)
            yield BucketProfile(self.dataset_id, bucket.start_ms, merged, segment)


def _segment_tags(schema: DatasetSchema, segment: Any) -> Segment:
    partition = next((p for p in schema.segments.values() if p.id == segment.parent_id), None)
    columns = partition.mapper.col_names if partition is not None and partition.mapper else []
    if len(columns) != len(segment.key):
        return tuple((f"key{index}", str(value)) for index, value in enumerate(segment.key))
    return tuple((str(column), str(value)) for column, value in zip(columns, segment.key))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
