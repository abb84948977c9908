"""Drift scores between two column sketches: Hellinger distances, 0 (same) to 1 (disjoint).

whylogs 1.6.4 has the same measure in ``whylogs.viz.drift.column_drift_algorithms.Hellinger``,
but importing ``whylogs.viz`` needs IPython and scipy (the ``whylogs[viz]`` extra), so the
distance is computed here from the same inputs and with the same binning rule: the KLL
sketches' probability masses over equal-width bins spanning both columns' ranges. String
columns get the Hellinger distance between their frequent-item shares (each item's share of
the non-null rows, the rest pooled as one "other" item); whylogs' chi-square test returns a
p-value that goes to 0 for any difference once buckets hold a few thousand rows, which makes
it a poor score to rank columns by.

Two guards keep chance out of the ranking: a side with fewer than ``MIN_VALUES`` values
gets no score (two rows at night differ from anything), and neither does a string column
whose distinct values exceed ``MAX_DISTINCT_SHARE`` of its rows (ids, tail numbers), whose
values barely repeat so that any two buckets look disjoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np

from ._sketches import ColumnSketch

__all__ = ["DRIFT_THRESHOLD", "MAX_DISTINCT_SHARE", "MIN_VALUES", "POSSIBLE_DRIFT_THRESHOLD",
           "drift_score"]

# whylogs' HellingerConfig thresholds: below 0.15 no drift, from 0.4 drift.
POSSIBLE_DRIFT_THRESHOLD: Final = 0.15
DRIFT_THRESHOLD: Final = 0.4

MIN_VALUES: Final = 20
MAX_DISTINCT_SHARE: Final = 0.5

_MAX_BINS: Final = 30
_ROWS_PER_BIN: Final = 4
_MIN_BINS: Final = 2


def drift_score(target: ColumnSketch, reference: ColumnSketch) -> float | None:
    """The Hellinger distance between ``target`` and ``reference``.

    Numeric columns (non-empty KLL sketches on both sides) compare their distributions;
    other columns compare their frequent items. ``None`` when neither can be compared,
    such as a column with fewer than :data:`MIN_VALUES` values on one side.
    """
    if target.kll_n and reference.kll_n:
        if min(target.kll_n, reference.kll_n) < MIN_VALUES:
            return None
        return _numeric(target, reference)
    if target.frequent is not None and reference.frequent is not None:
        return _categorical(target, reference)
    return None


def _numeric(target: ColumnSketch, reference: ColumnSketch) -> float:
    a, b = target.kll, reference.kll
    start = min(a.get_min_value(), b.get_min_value())
    end = max(a.get_max_value(), b.get_max_value())
    if start == end:
        return 0.0
    n_bins = max(_MIN_BINS, min(_MAX_BINS, math.ceil((a.get_n() + b.get_n()) / _ROWS_PER_BIN)))
    # Nudged so that the largest value falls inside the last bin, as whylogs does.
    end += abs(end) * 1e-7 if end else 1e-7
    width = (end - start) / n_bins
    edges = [start + i * width for i in range(n_bins + 1)]
    return _hellinger(a.get_pmf(edges), b.get_pmf(edges))


def _categorical(target: ColumnSketch, reference: ColumnSketch) -> float | None:
    target_shares = _shares(target)
    reference_shares = _shares(reference)
    if target_shares is None or reference_shares is None:
        return None
    keys = list(set(target_shares) | set(reference_shares))
    return _hellinger(
        [target_shares.get(key, 0.0) for key in keys],
        [reference_shares.get(key, 0.0) for key in keys],
    )


def _shares(column: ColumnSketch) -> dict[str | None, float] | None:
    present = column.n - column.nulls
    if present < MIN_VALUES or (column.distinct() or 0.0) > MAX_DISTINCT_SHARE * present:
        return None
    shares: dict[str | None, float] = {value: n / present for value, n in column.frequent_items()}
    # None stands for every item the sketch does not report, so it cannot clash with a value.
    shares[None] = max(0.0, 1.0 - sum(shares.values()))
    total = sum(shares.values())
    return {key: share / total for key, share in shares.items()}


def _hellinger(p: Sequence[float], q: Sequence[float]) -> float:
    # Both are probability masses, never negative.
    difference = np.sqrt(p) - np.sqrt(q)
    return min(1.0, math.sqrt(float(difference @ difference) / 2.0))
