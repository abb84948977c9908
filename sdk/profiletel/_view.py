"""A whylogs ``DatasetProfileView`` over raw columns, written without building whylogs
metric objects.

whylogs writes a view by asking every metric of every column for protobuf messages
through its generic serializer registry, and through a temporary file. A profile of
twenty columns takes milliseconds that way, more than tracking an hour of flights.
:class:`BatchedProfileView` writes the same bytes straight from the raw columns; it
builds whylogs' column views only when someone reads them (``get_columns``, ``merge``,
``to_pandas``...), and from then on behaves as the plain whylogs view it then is.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any, BinaryIO

from google.protobuf.internal.encoder import _VarintBytes
from whylogs.core import DatasetProfileView
from whylogs.core.proto import (
    ChunkHeader,
    ChunkMessage,
    ChunkOffsets,
    DatasetProfileHeader,
    DatasetProperties,
    DatasetSegmentHeader,
    MetricComponentMessage,
)
from whylogs.core.utils.timestamp_calculations import to_utc_milliseconds
from whylogs.core.view import ColumnProfileView
from whylogs.core.view.dataset_profile_view import WHYLOGS_MAGIC_HEADER_BYTES

from ._tracking import ColumnState, RawColumn

__all__ = ["BatchedProfileView"]

Column = RawColumn | ColumnState | ColumnProfileView


class BatchedProfileView(DatasetProfileView):
    """A profile view whose columns are :class:`RawColumn`, :class:`ColumnState` or
    whylogs ``ColumnProfileView`` objects. Reads and writes exactly as the view
    ``DatasetProfile.view()`` would give for the same metrics."""

    def __init__(
        self,
        *,
        columns: dict[str, Column],
        dataset_timestamp: datetime | None,
        creation_timestamp: datetime | None,
    ) -> None:
        super().__init__(
            columns={},
            dataset_timestamp=dataset_timestamp,
            creation_timestamp=creation_timestamp,
            metrics={},
            metadata={},
        )
        self._raw: dict[str, Column] | None = dict(columns)

    @property  # type: ignore[override]
    def _columns(self) -> dict[str, ColumnProfileView]:
        raw = self.__dict__.get("_raw")
        if raw is not None:
            self.__dict__["_built"] = {name: _column_view(c) for name, c in raw.items()}
            self.__dict__["_raw"] = None
        return self.__dict__.setdefault("_built", {})

    @_columns.setter
    def _columns(self, columns: dict[str, ColumnProfileView]) -> None:
        self.__dict__["_built"] = columns
        self.__dict__["_raw"] = None

    def _do_write(self, out_f: BinaryIO) -> tuple[bool, str]:
        raw = self.__dict__.get("_raw")
        if raw is None or (self._metrics and "model_performance_metrics" in self._metrics):
            return super()._do_write(out_f)
        write_view(out_f, raw, self._dataset_timestamp, self._creation_timestamp,
                   self._metadata)
        return True, "Wrote given BinaryIO:" + str(out_f)


def _column_view(column: Column) -> ColumnProfileView:
    if isinstance(column, ColumnProfileView):
        return column
    return column.view()


def _messages(column: Column) -> tuple[list[str], list[tuple[str, MetricComponentMessage]]]:
    """The component paths whylogs indexes, and the messages it writes, in its order."""
    if isinstance(column, RawColumn):
        return column.spec.paths, column.messages()
    view = column if isinstance(column, ColumnProfileView) else column.view()
    messages = []
    for metric in view._metrics.values():
        if metric.exclude_from_serialization:
            continue
        for name, message in metric.to_protobuf().metric_components.items():
            messages.append((f"{metric.namespace}/{name}", message))
    return view.get_metric_component_paths(), messages


def write_view(
    out: BinaryIO,
    columns: dict[str, Column],
    dataset_timestamp: datetime | None,
    creation_timestamp: datetime | None,
    metadata: dict[str, Any] | None,
) -> None:
    """Write what ``DatasetProfileView._do_write`` writes for these columns."""
    layouts = {name: _messages(column) for name, column in columns.items()}
    paths: set[str] = set()
    for column_paths, _ in layouts.values():
        paths.update(column_paths)
    ordered = sorted(paths)
    index_of = {path: index for index, path in enumerate(ordered)}

    body = io.BytesIO()
    offsets: dict[str, ChunkOffsets] = {}
    for name in sorted(layouts):
        offsets[name] = ChunkOffsets(offsets=[body.tell()])
        components = {}
        for path, message in layouts[name][1]:
            index = index_of.get(path)
            if index is None:
                raise ValueError(f"Missing metric from index mapping. Metric name: {path}")
            components[index] = message
        chunk = ChunkMessage(metric_components=components)
        header = ChunkHeader(type=ChunkHeader.ChunkType.COLUMN, length=chunk.ByteSize())
        body.write(_VarintBytes(header.ByteSize()))
        body.write(header.SerializeToString())
        body.write(chunk.SerializeToString())

    tags, plain_metadata = DatasetProfileView._split_tags_and_metadata(metadata)
    properties = DatasetProperties(
        dataset_timestamp=to_utc_milliseconds(dataset_timestamp),  # type: ignore[arg-type]
        creation_timestamp=to_utc_milliseconds(creation_timestamp),  # type: ignore[arg-type]
        tags=tags,
        metadata=plain_metadata,
    )
    header = DatasetProfileHeader(
        column_offsets=offsets,
        properties=properties,
        length=body.tell(),
        indexed_metric_paths=dict(enumerate(ordered)),
    )
    segment_header = DatasetSegmentHeader(has_segments=False)
    out.write(WHYLOGS_MAGIC_HEADER_BYTES)
    for message in (segment_header, header):
        out.write(_VarintBytes(message.ByteSize()))
        out.write(message.SerializeToString())
    out.write(body.getvalue())
