"""What the report shows, as numbers: per dataset (and segment), per column, per bucket."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Final

from .._profile import Segment
from ._drift import MIN_VALUES, drift_scores
from ._sketches import ColumnSketch, SketchProfile, merge_columns

__all__ = ["Baseline", "ColumnSeries", "GroupReport", "build_groups", "infer_bucket_ms"]

TOP_ITEMS: Final = 3
_QUANTILE_RANKS: Final = [0.05, 0.95]

# "first", "previous", or the merged columns of a baseline profile file.
Baseline = str | dict[str, ColumnSketch]


@dataclass
class ColumnSeries:
    """One column's figures, one entry per bucket of its group (``None``: not in that bucket).

    ``drift_previous[i]`` compares bucket ``i`` with the bucket before it,
    ``drift_baseline[i]`` with the baseline.
    """

    name: str
    size: int
    inferred_type: str = "null"
    count: list[int | None] = field(default_factory=list)
    nulls: list[int | None] = field(default_factory=list)
    nans: list[int | None] = field(default_factory=list)
    mean: list[float | None] = field(default_factory=list)
    minimum: list[float | None] = field(default_factory=list)
    maximum: list[float | None] = field(default_factory=list)
    p5: list[float | None] = field(default_factory=list)
    p95: list[float | None] = field(default_factory=list)
    distinct: list[float | None] = field(default_factory=list)
    types: list[dict[str, int] | None] = field(default_factory=list)
    top_items: dict[str, list[float | None]] = field(default_factory=dict)
    drift_previous: list[float | None] = field(default_factory=list)
    drift_baseline: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("count", "nulls", "nans", "mean", "minimum", "maximum", "p5", "p95",
                     "distinct", "types", "drift_previous", "drift_baseline"):
            setattr(self, name, [None] * self.size)

    @property
    def is_string(self) -> bool:
        return self.inferred_type == "string"

    def max_drift(self) -> tuple[float, int, str] | None:
        """The highest score over both comparisons: ``(score, bucket index, against)``."""
        best: tuple[float, int, str] | None = None
        for against, scores in (("previous", self.drift_previous),
                                ("baseline", self.drift_baseline)):
            for index, score in enumerate(scores):
                if score is not None and (best is None or score > best[0]):
                    best = (score, index, against)
        return best


@dataclass
class GroupReport:
    """One dataset, or one segment of it, over its buckets (sorted by start)."""

    dataset_id: str
    segment: Segment | None
    buckets: list[int]
    bucket_ms: int | None
    profiles: int
    columns: dict[str, ColumnSeries]

    @property
    def missing(self) -> list[int]:
        """Starts of the buckets with no profile between the first and the last."""
        if not self.bucket_ms or len(self.buckets) < 2:
            return []
        present = set(self.buckets)
        return [start for start in range(self.buckets[0], self.buckets[-1], self.bucket_ms)
                if start not in present]


def infer_bucket_ms(starts: list[int]) -> int | None:
    """The bucket length: the greatest common divisor of the gaps between bucket starts.

    ``None`` with fewer than two buckets. Buckets of one aggregation are whole multiples
    of its length apart, so the divisor is that length once any two are adjacent.
    """
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False) if b > a]
    if not gaps:
        return None
    length = 0
    for gap in gaps:
        length = math.gcd(length, gap)
    return length


def build_groups(
    profiles: Iterable[SketchProfile],
    *,
    by_segment: bool = False,
    baseline: Baseline = "first",
    exclude: Collection[str] = (),
) -> list[GroupReport]:
    """Group ``profiles`` by dataset (and segment), merge each bucket, and compute the series.

    :param baseline: ``"first"`` compares every bucket with its group's first bucket
        holding at least :data:`MIN_VALUES` values of the column,
        ``"previous"`` with the bucket before it, and a mapping of column sketches (a
        baseline profile) with that profile.
    :param exclude: columns left out of the report, such as calendar columns that differ
        between buckets by construction.
    :raises ValueError: for any other baseline string.
    """
    if isinstance(baseline, str) and baseline not in ("first", "previous"):
        raise ValueError(f"baseline must be 'first', 'previous' or a profile, got {baseline!r}")
    grouped: dict[tuple[str, Segment | None], dict[int, list[SketchProfile]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for profile in profiles:
        key = (profile.dataset_id, profile.segment if by_segment else None)
        grouped[key][profile.bucket_start_ms].append(profile)

    groups = []
    for (dataset_id, segment), by_bucket in sorted(
        grouped.items(), key=lambda item: (item[0][0], item[0][1] or ())
    ):
        groups.append(_build_group(dataset_id, segment, by_bucket, baseline, frozenset(exclude)))
    return groups


def _build_group(
    dataset_id: str,
    segment: Segment | None,
    by_bucket: dict[int, list[SketchProfile]],
    baseline: Baseline,
    exclude: frozenset[str],
) -> GroupReport:
    starts = sorted(by_bucket)
    size = len(starts)
    series: dict[str, ColumnSeries] = {}
    types: dict[str, dict[str, int]] = {}
    previous: dict[str, ColumnSketch] = {}
    first: dict[str, ColumnSketch] = {}

    # Frequent items per string column and bucket, kept to draw the top items' shares.
    frequent: dict[str, list[dict[str, int] | None]] = {}
    for index, start in enumerate(starts):
        merged = merge_columns(by_bucket[start])
        pairs: list[tuple[list[float | None], ColumnSketch, ColumnSketch]] = []
        for name, column in merged.items():
            if name in exclude:
                continue
            line = series.get(name) or series.setdefault(name, ColumnSeries(name, size))
            _fill(line, index, column)
            if name in previous:
                pairs.append((line.drift_previous, column, previous[name]))
            if baseline == "first" and name in first:
                pairs.append((line.drift_baseline, column, first[name]))
            elif isinstance(baseline, dict) and name in baseline:
                pairs.append((line.drift_baseline, column, baseline[name]))
            if column.inferred_type == "string":
                frequent.setdefault(name, [None] * size)[index] = dict(column.frequent_items())
            totals = types.setdefault(name, {})
            for type_name, count in column.types.items():
                totals[type_name] = totals.get(type_name, 0) + count
            # A baseline of a few rows would flag every bucket after it.
            if name not in first and column.n - column.nulls >= MIN_VALUES:
                first[name] = column
        scores = drift_scores([(target, reference) for _, target, reference in pairs])
        for (scores_line, _, _), score in zip(pairs, scores, strict=True):
            scores_line[index] = score
        previous = merged

    if baseline == "previous":
        for line in series.values():
            line.drift_baseline = list(line.drift_previous)
    for name, line in series.items():
        line.inferred_type = ColumnSketch(types=types[name]).inferred_type
        if line.is_string and name in frequent:
            _fill_top_items(line, frequent[name])
    return GroupReport(
        dataset_id=dataset_id,
        segment=segment,
        buckets=starts,
        bucket_ms=infer_bucket_ms(starts),
        profiles=sum(len(group) for group in by_bucket.values()),
        columns=dict(sorted(series.items())),
    )


def _fill(line: ColumnSeries, index: int, column: ColumnSketch) -> None:
    line.count[index] = column.n
    line.nulls[index] = column.nulls
    line.nans[index] = column.nans
    line.types[index] = {name: n for name, n in column.types.items() if n}
    line.mean[index] = column.mean_or_none()
    bounds = column.min_max()
    if bounds is not None:
        line.minimum[index], line.maximum[index] = bounds
    quantiles = column.quantiles(_QUANTILE_RANKS)
    if quantiles is not None:
        line.p5[index], line.p95[index] = quantiles
    line.distinct[index] = column.distinct()


def _fill_top_items(line: ColumnSeries, frequent: list[dict[str, int] | None]) -> None:
    """Each bucket's share of non-null rows held by each of the column's top items.

    The top items are those with the highest estimates summed over the buckets' frequent
    items, which spares merging every bucket's sketch into one.
    """
    totals: dict[str, int] = defaultdict(int)
    for items in frequent:
        for value, estimate in (items or {}).items():
            totals[value] += estimate
    top = sorted(totals, key=lambda value: (-totals[value], value))[:TOP_ITEMS]
    shares: dict[str, list[float | None]] = {value: [None] * line.size for value in top}
    for index, items in enumerate(frequent):
        count, nulls = line.count[index], line.nulls[index]
        if items is None or count is None or nulls is None or count - nulls <= 0:
            continue
        for value in top:
            shares[value][index] = items.get(value, 0) / (count - nulls)
    line.top_items = shares
