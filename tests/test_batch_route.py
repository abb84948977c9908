"""The batch route (columns read once per batch, raw columns, direct writer) gives each
bucket the profile whylogs' own ``DatasetProfile.track`` gives the same rows."""

from __future__ import annotations

import copy
import math
import pickle
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from whylogs.core import DatasetProfile, DatasetProfileView, DatasetSchema
from whylogs.core.metrics import MetricConfig
from whylogs.core.resolvers import STANDARD_RESOLVER
from whylogs.core.schema import DeclarativeSchema

from profiletel._buckets import DatasetAggregate, TimedFrame
from profiletel._columns import rows_to_frame
from profiletel._tracking import RawColumn
from profiletel._view import BatchedProfileView

HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def _rows(count: int, seed: int = 3) -> list[dict[str, Any]]:
    generator = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        pick = int(generator.integers(0, 12))
        rows.append(
            {
                "int": int(generator.integers(-1000, 1000)),
                "float": float(generator.normal()) if pick else math.nan,
                "text": f"v{pick}" * (1 + pick),
                "long_text": "x" * (100 + pick * 5),
                "mixed": [None, True, False, 3, 2.5, "s", math.nan, math.inf][pick % 8],
                "int_or_none": None if pick == 1 else index,
            }
        )
    return rows


def _aggregate(schema: DatasetSchema | None = None) -> tuple[DatasetAggregate, list[str]]:
    rejected: list[str] = []
    aggregate = DatasetAggregate("d", schema, lambda _id, rows, reason: rejected.append(reason))
    return aggregate, rejected


def _whylogs_view(rows: list[dict[str, Any]], schema: DatasetSchema | None = None) -> Any:
    profile = DatasetProfile(schema=schema.copy() if schema is not None else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profile.track(pandas=rows_to_frame(rows)[0])
    return profile.view()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)
    return a == b


# Quantiles and frequent items of sketches that had to compact or purge depend on the
# sketches' own randomness.
SKETCH_RANDOM = ("distribution/q_", "distribution/median", "frequent_items/")


def _summary_differences(ours: Any, theirs: Any, skip: tuple[str, ...] = ()) -> list[str]:
    found = []
    assert sorted(ours.get_columns()) == sorted(theirs.get_columns())
    for name, column in theirs.get_columns().items():
        expected = column.to_summary_dict()
        actual = ours.get_column(name).to_summary_dict()
        assert sorted(actual) == sorted(expected), name
        for key, value in expected.items():
            if key.startswith(skip):
                continue
            if not _same(actual[key], value):
                found.append(f"{name} {key}: {actual[key]!r} != {value!r}")
    return found


def test_each_bucket_of_a_batch_holds_what_whylogs_track_gives_its_rows():
    rows = _rows(3_000)
    aggregate, rejected = _aggregate()
    for part in range(3):
        aggregate.stage_rows(START_MS + part * HOUR_MS, rows[part::3])

    tracked = aggregate.commit()
    profiles = sorted(aggregate.finish(), key=lambda p: p.bucket_start_ms)

    assert tracked == 3_000 and rejected == []
    assert [p.bucket_start_ms for p in profiles] == [START_MS + i * HOUR_MS for i in range(3)]
    for part, profile in enumerate(profiles):
        assert _summary_differences(profile.view, _whylogs_view(rows[part::3])) == []


def test_a_bucket_fed_over_several_batches_counts_every_row_once():
    rows = _rows(2_000)
    aggregate, _ = _aggregate()
    for start in range(0, 2_000, 300):
        aggregate.stage_rows(START_MS, rows[start : start + 300])
        aggregate.commit()

    (profile,) = aggregate.finish()

    summary = profile.view.get_column("mixed").to_summary_dict()
    expected = _whylogs_view(rows).get_column("mixed").to_summary_dict()
    for key in (
        "counts/n",
        "counts/null",
        "counts/nan",
        "counts/inf",
        "counts/true",
        "types/integral",
        "types/fractional",
        "types/boolean",
        "types/string",
        "distribution/n",
        "distribution/min",
        "distribution/max",
    ):
        assert summary[key] == expected[key], key


def test_the_direct_writer_writes_the_bytes_whylogs_writes_for_the_same_view():
    aggregate, _ = _aggregate()
    aggregate.stage_rows(START_MS, _rows(500))
    (profile,) = aggregate.finish()
    view = profile.view
    assert isinstance(view, BatchedProfileView)

    direct = view.serialize()
    view.get_columns()  # builds whylogs' column views; writing then goes through whylogs
    assert view.__dict__["_raw"] is None

    assert direct == view.serialize()


def test_a_column_missing_from_some_rows_counts_those_rows_as_null():
    rows = [{"a": 1, "b": "x"}, {"a": 2}, {"b": "y"}, {"a": 4, "b": None}]
    aggregate, _ = _aggregate()
    aggregate.stage_rows(START_MS, rows[:2])
    aggregate.commit()
    aggregate.stage_rows(START_MS, rows[2:])

    (profile,) = aggregate.finish()

    counts = {
        name: (s["counts/n"], s["counts/null"])
        for name, s in ((n, c.to_summary_dict()) for n, c in profile.view.get_columns().items())
    }
    assert counts == {"a": (4, 1), "b": (4, 2)}


def test_values_of_other_types_go_through_whylogs_preprocessing_in_the_same_profile():
    stamps = [pd.Timestamp("2024-01-01", tz="UTC"), None, pd.Timestamp("2024-01-02", tz="UTC")]
    rows = [{"when": stamp, "n": index} for index, stamp in enumerate(stamps)]
    aggregate, rejected = _aggregate()
    aggregate.stage_rows(START_MS, rows)

    (profile,) = aggregate.finish()

    summary = profile.view.get_column("when").to_summary_dict()
    assert rejected == []
    assert (summary["counts/n"], summary["counts/null"], summary["types/object"]) == (3, 1, 2)


def test_a_frame_with_a_timestamp_column_is_split_into_the_buckets_of_its_rows():
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(
                [START_MS + 5, START_MS + HOUR_MS + 1, START_MS + 9, None], unit="ms", utc=True
            ),
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    aggregate, _ = _aggregate()
    aggregate.stage_frame(START_MS + 2 * HOUR_MS, TimedFrame(frame, "when"))

    profiles = {p.bucket_start_ms: p for p in aggregate.finish()}

    counts = {
        start: p.view.get_column("x").to_summary_dict()["counts/n"] for start, p in profiles.items()
    }
    assert counts == {START_MS: 2, START_MS + HOUR_MS: 1, START_MS + 2 * HOUR_MS: 1}
    total = profiles[START_MS].view.get_column("x").to_summary_dict()["distribution/mean"]
    assert total == 2.0


def test_a_frame_is_profiled_as_whylogs_profiles_it_column_by_column():
    frame = pd.DataFrame(
        {
            "i": np.arange(50, dtype=np.int64),
            "f": np.where(np.arange(50) % 7 == 0, np.nan, np.arange(50) / 3),
            "o": ["a", None, 3, 2.5, True] * 10,
            "b": np.arange(50) % 2 == 0,
            "i32": np.arange(50, dtype=np.int32),
        }
    )
    aggregate, rejected = _aggregate()
    aggregate.stage_frame(START_MS, frame)

    (profile,) = aggregate.finish()

    reference = DatasetProfile()
    reference.track(pandas=frame)
    assert rejected == []
    assert _summary_differences(profile.view, reference.view()) == []


def test_a_declarative_schema_with_its_own_config_is_followed():
    config = MetricConfig(hll_lg_k=8, kll_k=64, large_kll_k=False, fi_lg_max_k=5)
    schema = DeclarativeSchema(STANDARD_RESOLVER, default_config=config)
    rows = _rows(400)
    aggregate, _ = _aggregate(schema)
    aggregate.stage_rows(START_MS, rows)

    (profile,) = aggregate.finish()

    assert _summary_differences(profile.view, _whylogs_view(rows, schema), SKETCH_RANDOM) == []
    column = profile.view.get_column("int").get_metric("distribution")
    assert column.kll.value.get_k() == 64


# whylogs' own variance of a column holding infinities warns; the values are whylogs'.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_column_with_unicode_ranges_keeps_whylogs_metrics():
    schema = DatasetSchema(default_configs=MetricConfig(track_unicode_ranges=True))
    rows = _rows(200)
    aggregate, _ = _aggregate(schema)
    aggregate.stage_rows(START_MS, rows)
    aggregate.commit()

    bucket = aggregate._buckets[START_MS]
    assert bucket.columns is not None
    assert type(bucket.columns["int"]) is RawColumn
    assert type(bucket.columns["text"]) is not RawColumn
    (profile,) = aggregate.finish()
    assert _summary_differences(profile.view, _whylogs_view(rows, schema)) == []


@pytest.mark.parametrize("bad", [2**70, "\ud800"])
def test_a_value_whylogs_rejects_costs_only_its_own_row(bad):
    rows = [{"v": index, "w": "ok"} for index in range(9)] + [{"v": bad, "w": "ok"}]
    aggregate, rejected = _aggregate()
    aggregate.stage_rows(START_MS, rows)

    tracked = aggregate.commit()
    (profile,) = aggregate.finish()

    assert tracked == 9 and len(rejected) == 1
    assert profile.view.get_column("w").to_summary_dict()["counts/n"] == 9


def test_a_batched_view_pickles_and_copies_as_the_whylogs_view_of_its_bytes():
    aggregate, _ = _aggregate()
    aggregate.stage_rows(START_MS, _rows(50))
    (profile,) = aggregate.finish()

    for clone in (pickle.loads(pickle.dumps(profile.view)), copy.deepcopy(profile.view)):
        assert type(clone) is DatasetProfileView
        # Sketches read back re-hash their entries, so compare what they say, not bytes,
        # and frequent items of equal counts in any order.
        assert _summary_differences(clone, profile.view, ("frequent_items/",)) == []
        for name, column in profile.view.get_columns().items():
            items = column.to_summary_dict().get("frequent_items/frequent_strings")
            if items is not None:
                cloned = clone.get_column(name).to_summary_dict()["frequent_items/frequent_strings"]
                assert sorted(map(repr, cloned)) == sorted(map(repr, items))
