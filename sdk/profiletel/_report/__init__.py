"""``profiletel report``: one self-contained HTML page of every column over time, with drift.

:func:`build_report` reads profiles (a folder, a file, or ``s3://bucket/prefix``), merges
them per dataset (and segment) and bucket, and returns the page; :func:`write_report`
writes it to a file.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._drift import DRIFT_THRESHOLD, POSSIBLE_DRIFT_THRESHOLD, drift_score
from ._html import DATA_ELEMENT_ID, bucket_rows, format_number, render_page
from ._model import Baseline, ColumnSeries, GroupReport, build_groups, infer_bucket_ms
from ._sketches import ColumnSketch, SketchProfile, merge_columns, read_sketch_profile
from ._source import read_source

__all__ = [
    "DATA_ELEMENT_ID",
    "DRIFT_THRESHOLD",
    "POSSIBLE_DRIFT_THRESHOLD",
    "ColumnSeries",
    "ColumnSketch",
    "GroupReport",
    "Report",
    "SketchProfile",
    "bucket_rows",
    "build_groups",
    "build_report",
    "drift_score",
    "format_number",
    "infer_bucket_ms",
    "merge_columns",
    "read_sketch_profile",
    "render_report",
    "write_report",
]


@dataclass
class Report:
    """A rendered report: the page and the groups it was drawn from."""

    html: str
    groups: list[GroupReport]
    profiles: int


def build_report(
    path: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    by_segment: bool = False,
    baseline: str = "first",
    threshold: float = DRIFT_THRESHOLD,
    s3_options: Mapping[str, Any] | None = None,
    exclude: Collection[str] = (),
) -> Report:
    """Read the profiles under ``path`` and render the report.

    :param baseline: ``"first"`` (each group's first bucket), ``"previous"``, or the path
        of a profile file to compare every bucket with.
    :param threshold: drift scores at or above it are highlighted.
    :param exclude: column names left out of the report.
    :raises FileNotFoundError: when ``path`` or the baseline file does not exist.
    :raises ValueError: when there is no profile to report on, or the baseline file is not
        a profile.
    """
    source = os.fspath(path)
    profiles = read_source(source, dataset=dataset, s3_options=s3_options)
    if not profiles:
        which = f" of dataset {dataset!r}" if dataset is not None else ""
        raise ValueError(f"no profiles{which} under {source}")
    return render_report(profiles, source=source, by_segment=by_segment, baseline=baseline,
                         threshold=threshold, exclude=exclude)


def render_report(
    profiles: list[SketchProfile],
    *,
    source: str,
    by_segment: bool = False,
    baseline: str = "first",
    threshold: float = DRIFT_THRESHOLD,
    exclude: Collection[str] = (),
) -> Report:
    """Render the report of profiles already read (see :func:`build_report`).

    :param source: where they came from, as the page names it.
    """
    reference: Baseline = baseline
    label = {"first": "each group's first bucket", "previous": "the previous bucket"}.get(
        baseline, ""
    )
    if baseline not in ("first", "previous"):
        baseline_file = Path(baseline)
        reference = merge_columns([read_sketch_profile(baseline_file.read_bytes())])
        label = f"the profile {baseline_file.name}"
    groups = build_groups(profiles, by_segment=by_segment, baseline=reference, exclude=exclude)
    title = "profiletel report: " + ", ".join(sorted({g.dataset_id for g in groups}))
    html = render_page(groups, title=title, source=source, baseline_label=label,
                       threshold=threshold)
    return Report(html=html, groups=groups, profiles=len(profiles))


def write_report(report: Report, output: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``output`` (folders created as needed) and return its path."""
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report.html, encoding="utf-8")
    return target
