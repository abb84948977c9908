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
from typing import Any, BinaryIO, Final, TypeAlias

from google.protobuf.internal.encoder import _VarintBytes
from whylogs.core import DatasetProfileView
from whylogs.core.proto import (
    ChunkHeader,
    ChunkMessage,
    ChunkOffsets,
    DatasetProfileHeader,
    DatasetProperties,
    DatasetSegmentHeader,
)
from whylogs.core.utils.timestamp_calculations import to_utc_milliseconds
from whylogs.core.view import ColumnProfileView
from whylogs.core.view.dataset_profile_view import WHYLOGS_MAGIC_HEADER_BYTES

from ._tracking import ColumnSpec, ColumnState, RawColumn

__all__ = ["BatchedProfileView"]

Column: TypeAlias = RawColumn | ColumnState | ColumnProfileView


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

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled and deep-copied as the plain whylogs view its bytes make.
        return DatasetProfileView.deserialize, (self.serialize(),)

    def _do_write(self, out_f: BinaryIO) -> tuple[bool, str]:
        raw = self.__dict__.get("_raw")
        if raw is None or (self._metrics and "model_performance_metrics" in self._metrics):
            return super()._do_write(out_f)
        write_view(out_f, raw, self._dataset_timestamp, self._creation_timestamp, self._metadata)
        return True, "Wrote given BinaryIO:" + str(out_f)


def _column_view(column: Column) -> ColumnProfileView:
    if isinstance(column, ColumnProfileView):
        return column
    return column.view()


def _paths(column: Column) -> list[str]:
    if type(column) is RawColumn:
        return column.spec.paths
    return _view_of(column).get_metric_component_paths()


def _view_of(column: Column) -> ColumnProfileView:
    return column if isinstance(column, ColumnProfileView) else column.view()


class _Index:
    """Every component path of a profile, sorted, as whylogs indexes them; and, per
    column spec, where each raw component goes."""

    __slots__ = ("ordered", "index_of", "_plans")

    def __init__(self, paths: set[str]) -> None:
        self.ordered = sorted(paths)
        self.index_of = {path: index for index, path in enumerate(self.ordered)}
        self._plans: dict[ColumnSpec, list[tuple[int, str, int, int]]] = {}

    def plan(self, spec: ColumnSpec) -> list[tuple[int, str, int, int]]:
        plan = self._plans.get(spec)
        if plan is None:
            plan = self._plans[spec] = spec.plan(self.index_of)
        return plan


def _write_components(column: Column, components: Any, index: _Index) -> None:
    if type(column) is RawColumn:
        column.write_components(components, index.plan(column.spec))
        return
    for metric in _view_of(column)._metrics.values():
        if metric.exclude_from_serialization:
            continue
        for name, message in metric.to_protobuf().metric_components.items():
            path = f"{metric.namespace}/{name}"
            position = index.index_of.get(path)
            if position is None:
                raise ValueError(f"Missing metric from index mapping. Metric name: {path}")
            components[position].CopyFrom(message)


# The index of each set of column specs: profiles of one dataset usually share one.
_INDEXES: dict[tuple[Any, ...], _Index] = {}
_MAX_INDEXES: Final = 256


def _index(names: list[str], columns: dict[str, Column]) -> _Index:
    key = tuple(
        (name, column.spec) if isinstance(column := columns[name], RawColumn) else None
        for name in names
    )
    cached = _INDEXES.get(key) if None not in key else None
    if cached is not None:
        return cached
    paths: set[str] = set()
    for name in names:
        paths.update(_paths(columns[name]))
    found = _Index(paths)
    if None not in key:
        if len(_INDEXES) >= _MAX_INDEXES:
            _INDEXES.clear()
        _INDEXES[key] = found
    return found


def write_view(
    out: BinaryIO,
    columns: dict[str, Column],
    dataset_timestamp: datetime | None,
    creation_timestamp: datetime | None,
    metadata: dict[str, Any] | None,
) -> None:
    """Write what ``DatasetProfileView._do_write`` writes for these columns."""
    names = sorted(columns)
    index = _index(names, columns)

    body = io.BytesIO()
    offsets: dict[str, ChunkOffsets] = {}
    for name in names:
        offsets[name] = ChunkOffsets(offsets=[body.tell()])
        chunk = ChunkMessage()
        _write_components(columns[name], chunk.metric_components, index)
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
        indexed_metric_paths=dict(enumerate(index.ordered)),
    )
    segment_header = DatasetSegmentHeader(has_segments=False)
    out.write(WHYLOGS_MAGIC_HEADER_BYTES)
    for message in (segment_header, header):
        out.write(_VarintBytes(message.ByteSize()))
        out.write(message.SerializeToString())
    out.write(body.getvalue())
