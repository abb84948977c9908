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
           "drift_score", "drift_scores"]

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
    return drift_scores([(target, reference)])[0]


def drift_scores(pairs: Sequence[tuple[ColumnSketch, ColumnSketch]]) -> list[float | None]:
    """:func:`drift_score` of each ``(target, reference)`` pair, computed together.

    One array operation for many pairs costs far less than one per pair, which matters for
    a year of hourly buckets (350,000 pairs for 20 columns).
    """
    scores: list[float | None] = [None] * len(pairs)
    masses: list[tuple[list[float], list[float]]] = []
    rows: list[int] = []
    for index, (target, reference) in enumerate(pairs):
        found = _masses(target, reference)
        if isinstance(found, float):
            scores[index] = found
        elif found is not None:
            masses.append(found)
            rows.append(index)
    if not masses:
        return scores

    width = max(len(p) for p, _ in masses)
    p_matrix = np.zeros((len(masses), width))
    q_matrix = np.zeros((len(masses), width))
    for row, (p, q) in enumerate(masses):
        p_matrix[row, : len(p)] = p
        q_matrix[row, : len(q)] = q
    # Both are probability masses, never negative.
    difference = np.sqrt(p_matrix) - np.sqrt(q_matrix)
    distances = np.minimum(1.0, np.sqrt(np.einsum("ij,ij->i", difference, difference) / 2.0))
    for row, index in enumerate(rows):
        scores[index] = float(distances[row])
    return scores


Masses = tuple[list[float], list[float]]


def _masses(target: ColumnSketch, reference: ColumnSketch) -> Masses | float | None:
    """The two distributions to compare, a score when it is known without them (two
    constant columns), or ``None`` when they cannot be compared."""
    if target.kll_n and reference.kll_n:
        if min(target.kll_n, reference.kll_n) < MIN_VALUES:
            return None
        return _numeric(target, reference)
    if target.frequent is not None and reference.frequent is not None:
        return _categorical(target, reference)
    return None


def _numeric(target: ColumnSketch, reference: ColumnSketch) -> Masses | float:
    a, b = target.kll, reference.kll
    start = min(a.get_min_value(), b.get_min_value())
    end = max(a.get_max_value(), b.get_max_value())
    if start == end:
        return 0.0
    n_bins = max(_MIN_BINS, min(_MAX_BINS, math.ceil((target.kll_n + reference.kll_n)
                                                     / _ROWS_PER_BIN)))
    # Nudged so that the largest value falls inside the last bin, as whylogs does.
    end += abs(end) * 1e-7 if end else 1e-7
    width = (end - start) / n_bins
    edges = [start + i * width for i in range(n_bins + 1)]
    return a.get_pmf(edges), b.get_pmf(edges)


def _categorical(target: ColumnSketch, reference: ColumnSketch) -> Masses | None:
    target_shares = _shares(target)
    reference_shares = _shares(reference)
    if target_shares is None or reference_shares is None:
        return None
    keys = list(set(target_shares) | set(reference_shares))
    return ([target_shares.get(key, 0.0) for key in keys],
            [reference_shares.get(key, 0.0) for key in keys])


def _shares(column: ColumnSketch) -> dict[str | None, float] | None:
    """Each frequent item's share of the non-null rows; kept on the column, which is
    compared twice (with the previous bucket and with the baseline)."""
    if "shares" in column.cache:
        return column.cache["shares"]  # type: ignore[no-any-return]
    present = column.n - column.nulls
    shares: dict[str | None, float] | None = None
    if present >= MIN_VALUES and (column.distinct() or 0.0) <= MAX_DISTINCT_SHARE * present:
        shares = {value: n / present for value, n in column.frequent_items()}
        # None stands for every item the sketch does not report: it cannot clash with a value.
        shares[None] = max(0.0, 1.0 - sum(shares.values()))
        total = sum(shares.values())
        shares = {key: share / total for key, share in shares.items()}
    column.cache["shares"] = shares
    return shares
