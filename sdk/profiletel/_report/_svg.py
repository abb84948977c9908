"""Small inline SVG line charts, drawn at most two points per pixel column.

A year of hourly buckets is 8,760 points per series, far more than a 280-pixel chart can
show; each pixel column keeps its lowest and highest value, which draws the same picture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

__all__ = ["Line", "chart", "short_number"]

WIDTH: Final = 280
HEIGHT: Final = 96
_LEFT: Final = 46
_RIGHT: Final = 6
_TOP: Final = 16
_BOTTOM: Final = 14


@dataclass(frozen=True)
class Line:
    """One series: ``values[i]`` belongs to bucket ``i``; ``None`` leaves a gap."""

    values: Sequence[float | None]
    css_class: str
    label: str


def chart(
    title: str,
    times: Sequence[int],
    gap_ms: int | None,
    lines: Sequence[Line],
    *,
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    y_range: tuple[float, float] | None = None,
    threshold: float | None = None,
    percent: bool = False,
) -> str:
    """An ``<svg>`` chart of ``lines`` over bucket start ``times`` (epoch ms).

    :param gap_ms: a line breaks where two buckets are further apart than this (a missing
        bucket); ``None`` never breaks it.
    :param band: lower and upper values drawn as a shaded area behind the lines.
    :param y_range: fixed axis bounds; default the data's.
    :param threshold: drawn as a dashed line, and points at or above it as marks.
    """
    values = [v for line in lines for v in line.values if v is not None and math.isfinite(v)]
    if band is not None:
        values += [v for side in band for v in side if v is not None and math.isfinite(v)]
    low, high = y_range if y_range is not None else (
        (min(values), max(values)) if values else (0.0, 1.0)
    )
    if high <= low:
        low, high = low - 1.0, high + 1.0
    t0, t1 = (times[0], times[-1]) if times else (0, 1)
    span = (t1 - t0) or 1
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    xs = [_LEFT + (t - t0) / span * plot_w for t in times]
    if len(times) == 1:
        xs = [_LEFT + plot_w / 2]

    def y_of(value: float) -> float:
        return _TOP + (high - value) / (high - low) * plot_h

    breaks = _breaks(times, gap_ms)
    parts = [
        f'<svg class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'data-t0="{t0}" data-t1="{t1}" data-left="{_LEFT}" data-plot-width="{plot_w}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text class="title" x="{_LEFT}" y="11">{escape(title)}</text>',
        f'<rect class="plot" x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for value in (high, low):
        label = short_number(value, percent)
        parts.append(f'<text class="axis" x="{_LEFT - 3}" y="{y_of(value) + 3:.1f}" '
                     f'text-anchor="end">{label}</text>')
    if band is not None:
        for path in _band_paths(xs, band[0], band[1], breaks, y_of):
            parts.append(f'<path class="band" d="{path}"/>')
    if threshold is not None and low <= threshold <= high:
        y = y_of(threshold)
        parts.append(f'<line class="threshold" x1="{_LEFT}" x2="{_LEFT + plot_w}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/>')
    for line in lines:
        path = _line_path(xs, line.values, breaks, y_of)
        if path:
            parts.append(f'<path class="line {line.css_class}" d="{path}">'
                         f'<title>{escape(line.label)}</title></path>')
        if threshold is not None:
            parts.extend(_marks(xs, line.values, threshold, y_of))
    parts.append("</svg>")
    return "".join(parts)


def short_number(value: float, percent: bool = False) -> str:
    """``12.3k``, ``4.5M``, ``0.123``, or ``12%`` for an axis label."""
    if percent:
        return f"{value * 100:.0f}%"
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _breaks(times: Sequence[int], gap_ms: int | None) -> set[int]:
    """Indexes that start a new stretch of the line because a bucket is missing before them."""
    if not gap_ms:
        return set()
    return {i for i in range(1, len(times)) if times[i] - times[i - 1] > gap_ms}


def _stretches(
    xs: Sequence[float], values: Sequence[float | None], breaks: set[int]
) -> list[list[tuple[int, float]]]:
    """Runs of ``(pixel column, value)`` with no missing value and no missing bucket."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for index, value in enumerate(values):
        if value is None or not math.isfinite(value) or index in breaks:
            if current:
                runs.append(current)
            current = []
        if value is not None and math.isfinite(value):
            current.append((round(xs[index]), value))
    if current:
        runs.append(current)
    return runs


def _reduce(run: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """At most the first, lowest, highest and last value of each pixel column, in order."""
    if len(run) <= 2:
        return run
    out: list[tuple[int, float]] = []
    column: list[tuple[int, float]] = []
    for point in run:
        if column and point[0] != column[0][0]:
            out.extend(_column_points(column))
            column = []
        column.append(point)
    out.extend(_column_points(column))
    return out


def _column_points(column: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(column) <= 2:
        return column
    low = min(column, key=lambda p: p[1])
    high = max(column, key=lambda p: p[1])
    middle = [low, high] if column.index(low) < column.index(high) else [high, low]
    return [column[0], *middle, column[-1]]


def _line_path(xs: Sequence[float], values: Sequence[float | None], breaks: set[int],
               y_of: Callable[[float], float]) -> str:
    pieces = []
    for run in _stretches(xs, values, breaks):
        points = _reduce(run)
        if len(points) == 1:
            x, v = points[0]
            points = [(x - 1, v), (x + 1, v)]
        coords = " ".join(f"{x},{y_of(v):.1f}" for x, v in points)
        pieces.append(f"M{coords}")
    return "".join(pieces)


def _band_paths(
    xs: Sequence[float],
    lower: Sequence[float | None],
    upper: Sequence[float | None],
    breaks: set[int],
    y_of: Callable[[float], float],
) -> list[str]:
    paths = []
    both = [None if lo is None or hi is None else (lo, hi)
            for lo, hi in zip(lower, upper, strict=True)]
    runs = _stretches(xs, [None if b is None else b[1] for b in both], breaks)
    low_runs = _stretches(xs, [None if b is None else b[0] for b in both], breaks)
    for top, bottom in zip(runs, low_runs, strict=True):
        top_points = _extremes(top, max)
        bottom_points = _extremes(bottom, min)
        if len(top_points) == 1:
            top_points = [(top_points[0][0] - 1, top_points[0][1]),
                          (top_points[0][0] + 1, top_points[0][1])]
            bottom_points = [(bottom_points[0][0] - 1, bottom_points[0][1]),
                             (bottom_points[0][0] + 1, bottom_points[0][1])]
        outline = top_points + list(reversed(bottom_points))
        coords = " ".join(f"{x},{y_of(v):.1f}" for x, v in outline)
        paths.append(f"M{coords}Z")
    return paths


def _extremes(
    run: list[tuple[int, float]], pick: Callable[[float, float], float]
) -> list[tuple[int, float]]:
    """One point per pixel column: its highest (``max``) or lowest (``min``) value."""
    by_column: dict[int, float] = {}
    for x, value in run:
        by_column[x] = pick(by_column[x], value) if x in by_column else value
    return sorted(by_column.items())


def _marks(xs: Sequence[float], values: Sequence[float | None], threshold: float,
           y_of: Callable[[float], float]) -> list[str]:
    """A dot per pixel column whose highest value is at or above ``threshold``."""
    above: dict[int, float] = {}
    for index, value in enumerate(values):
        if value is not None and value >= threshold:
            x = round(xs[index])
            above[x] = max(above.get(x, value), value)
    return [f'<circle class="above" cx="{x}" cy="{y_of(v):.1f}" r="2"/>'
            for x, v in sorted(above.items())]
