"""Segments: which rows of a batch belong to which segment of a dataset's schema.

A segment is named by ``((column, value), ...)``, the values turned into text with
``str()`` exactly as whylogs does when it segments one row at a time. The grouping is
done here rather than by whylogs' ``pandas.groupby`` path for two reasons: a row whose
segment value is null is kept (whylogs' frame path drops it), and a value gets the
same name whichever batch it arrives in (``groupby`` names ``1`` as ``"1.0"`` in a
column that also holds a ``None``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

import numpy as np
import pandas as pd
from whylogs.core import DatasetSchema
from whylogs.core.segment import Segment as WhylogsSegment
from whylogs.core.segmentation_partition import SegmentationPartition

from ._profile import Segment

__all__ = ["check_segments", "is_segmented", "split_segments", "whylogs_segment"]

# whylogs refuses schemas with more partitions than this.
MAX_PARTITIONS: Final = 10


def is_segmented(schema: DatasetSchema | None) -> bool:
    return schema is not None and bool(schema.segments)


def check_segments(schema: DatasetSchema) -> None:
    """Check that profiletel can segment on ``schema``.

    :raises ValueError: for more than ``MAX_PARTITIONS`` partitions, a partition that
        names no column, one with a custom mapper function (whylogs does not support
        those either), or two partitions on the same columns, whose segments could not
        be told apart.
    """
    partitions = list(schema.segments.values())
    if len(partitions) > MAX_PARTITIONS:
        raise ValueError(
            f"the schema has {len(partitions)} segment partitions; whylogs allows at most "
            f"{MAX_PARTITIONS}"
        )
    seen: dict[tuple[str, ...], str] = {}
    for partition in partitions:
        columns = _columns(partition)
        if not columns:
            raise ValueError(
                f"segment partition {partition.name!r} names no column; segment with "
                "whylogs' segment_on_column() or a ColumnMapperFunction(col_names=[...])"
            )
        if partition.mapper is not None and partition.mapper.map is not None:
            raise ValueError(
                f"segment partition {partition.name!r} uses a custom mapper function, which "
                "whylogs does not support; segment on column values instead"
            )
        if columns in seen:
            raise ValueError(
                f"segment partitions {seen[columns]!r} and {partition.name!r} both segment on "
                f"{', '.join(columns)}; their segments would share names, so keep only one"
            )
        seen[columns] = partition.name


def split_segments(
    schema: DatasetSchema, frame: pd.DataFrame
) -> Iterator[tuple[Segment, pd.DataFrame]]:
    """Yield each segment of ``frame`` under every partition of ``schema``, with its rows.

    A row belongs to one segment per partition (minus those a partition's filter leaves
    out). A segment column missing from ``frame`` counts as null in every row, as a
    column missing from some rows does.
    """
    for partition in schema.segments.values():
        rows = _filtered(partition, frame)
        if len(rows):
            yield from _groups(_columns(partition), rows)


def whylogs_segment(
    schema: DatasetSchema, segment: Segment
) -> tuple[WhylogsSegment, SegmentationPartition] | None:
    """The whylogs ``Segment`` and partition a profiletel segment name stands for, or
    ``None`` if no partition of ``schema`` segments on exactly those columns."""
    columns = tuple(column for column, _ in segment)
    for partition in schema.segments.values():
        if _columns(partition) == columns:
            key = tuple(value for _, value in segment)
            return WhylogsSegment(key=key, parent_id=partition.id), partition
    return None


def _columns(partition: SegmentationPartition) -> tuple[str, ...]:
    if partition.mapper is None or not partition.mapper.col_names:
        return ()
    return tuple(partition.mapper.col_names)


def _filtered(partition: SegmentationPartition, frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the partition's filter the way whylogs applies it to a DataFrame."""
    condition = partition.filter
    if condition is None:
        return frame
    if condition.filter_function is not None:
        return frame[condition.filter_function]
    if condition.query_string:
        return frame.query(condition.query_string)
    return frame


def _groups(columns: Sequence[str], frame: pd.DataFrame) -> Iterator[tuple[Segment, pd.DataFrame]]:
    size = len(frame)
    names: list[list[str]] = []
    codes: np.ndarray | None = None
    for column in columns:
        if column in frame.columns:
            text = [str(value) for value in frame[column].tolist()]
        else:
            text = ["None"] * size
        column_codes, uniques = pd.factorize(np.array(text, dtype=object))
        names.append(text)
        if codes is None:
            codes = column_codes
        else:
            # Renumber after each column so that the combined codes stay below size**2.
            codes, _ = pd.factorize(codes * len(uniques) + column_codes)
    assert codes is not None

    groups = int(codes.max()) + 1
    if groups == 1:
        yield tuple((column, names[i][0]) for i, column in enumerate(columns)), frame
        return
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=groups))[:-1]
    for positions in np.split(order, bounds):
        first = int(positions[0])
        segment = tuple((column, names[i][first]) for i, column in enumerate(columns))
        yield segment, frame.take(positions)
