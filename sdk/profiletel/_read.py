"""Read profiles back from a folder, and summarise a profile per column."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from whylogs.core import DatasetProfileView

from ._profile import BucketProfile

__all__ = ["iter_profile_files", "read_profiles", "merge_views", "ColumnSummary", "summarize"]

_logger = logging.getLogger(__name__)


def iter_profile_files(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Every ``*.bin`` under ``path`` (or ``path`` itself), skipping hidden folders such as
    the dead-letter directory, in a stable order."""
    root = Path(path)
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such file or folder")
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".bin") and not name.startswith("."):
                yield Path(folder) / name


def read_profiles(path: str | os.PathLike[str]) -> list[BucketProfile]:
    """Every readable profile under ``path``. A file that is not a whylogs profile is
    skipped with a WARNING naming it, so one damaged file does not hide the rest."""
    profiles = []
    for file in iter_profile_files(path):
        try:
            profiles.append(BucketProfile.from_bytes(file.read_bytes()))
        except Exception as exc:
            _logger.warning(
                "Skipped %s: it is not a readable whylogs profile (%s: %s). Move it out of "
                "the folder to silence this warning.",
                file, type(exc).__name__, exc,
            )
    return profiles


def merge_views(views: Iterable[DatasetProfileView]) -> DatasetProfileView | None:
    merged: DatasetProfileView | None = None
    for view in views:
        merged = view if merged is None else merged.merge(view)
    return merged


@dataclass(frozen=True)
class ColumnSummary:
    """The figures ``profiletel show`` prints for one column."""

    column: str
    count: int
    nulls: int
    nans: int
    types: dict[str, int]
    mean: float | None
    stddev: float | None
    min: float | None
    max: float | None
    distinct: float | None

    @property
    def inferred_type(self) -> str:
        present = {name: n for name, n in self.types.items() if n}
        return max(present, key=lambda name: present[name]) if present else "null"


def _metric_value(view: DatasetProfileView, column: str, path: str) -> float | None:
    column_view = view.get_column(column)
    if column_view is None:
        return None
    metric_name, _, component = path.partition("/")
    metric = column_view.get_metric(metric_name)
    if metric is None:
        return None
    value = metric.to_summary_dict().get(component)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def summarize(view: DatasetProfileView) -> list[ColumnSummary]:
    """One :class:`ColumnSummary` per column, in column-name order."""
    summaries = []
    for column in sorted(view.get_columns()):
        counts = view.get_column(column).get_metric("counts")
        types_metric = view.get_column(column).get_metric("types")
        type_counts = (
            {k: int(v) for k, v in types_metric.to_summary_dict().items()} if types_metric else {}
        )
        numeric = sum(type_counts.get(k, 0) for k in ("integral", "fractional"))
        distribution = numeric > 0

        def stat(path: str, enabled: bool = True, column: str = column) -> float | None:
            return _metric_value(view, column, path) if enabled else None

        summaries.append(
            ColumnSummary(
                column=column,
                count=int(counts.n.value) if counts else 0,
                nulls=int(counts.null.value) if counts else 0,
                nans=int(counts.nan.value) if counts else 0,
                types=type_counts,
                mean=stat("distribution/mean", distribution),
                stddev=stat("distribution/stddev", distribution),
                min=stat("distribution/min", distribution),
                max=stat("distribution/max", distribution),
                distinct=stat("cardinality/est"),
            )
        )
    return summaries
