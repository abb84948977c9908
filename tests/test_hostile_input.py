"""Odd and hostile input: each case gets a clear error in the caller, or a documented
and counted outcome, and the worker always survives (see docs/operations.md)."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import RecordingExporter
from profiletel import BatchProfileProcessor, DeadLetterStore, PermanentExportError, ProfileProvider
from profiletel._read import ColumnSummary, merge_views, read_profiles, summarize
from profiletel_exporters.local import LocalExporter

HOUR_MS = 3_600_000
# 2023-11-14T22:13:20.123Z
SOME_MS = 1_700_000_000_123


@pytest.fixture
def provider(recording: RecordingExporter, tmp_path: Path) -> Iterator[ProfileProvider]:
    processor = BatchProfileProcessor(
        [recording], write_schedule=None, dead_letter_dir=tmp_path / "dead"
    )
    provider = ProfileProvider([processor])
    yield provider
    status = provider.status().processors[0]
    provider.shutdown(timeout_s=10)
    # The rule of this whole module: whatever came in, the worker never died.
    assert status.worker_alive
    assert status.worker_restarts == 0


def columns(
    provider: ProfileProvider, recording: RecordingExporter, dataset_id: str = "d"
) -> dict[str, ColumnSummary]:
    assert provider.force_flush(timeout_s=30)
    view = merge_views(p.view for p in recording.profiles if p.dataset_id == dataset_id)
    assert view is not None, f"no profile of dataset {dataset_id!r} was exported"
    return {summary.column: summary for summary in summarize(view)}


def dataset_status(provider: ProfileProvider, dataset_id: str = "d"):
    return provider.status().processors[0].datasets[dataset_id]


def present_types(summary: ColumnSummary) -> dict[str, int]:
    return {name: n for name, n in summary.types.items() if n}


def profiletel_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("profiletel") and r.levelno == level]


# Rows


@pytest.mark.parametrize("data", ["a=1", 42, None, 1.5, ("a", 1), {"a"}, b"row"])
def test_log_rejects_data_that_is_not_a_row_list_or_frame(provider, data):
    with pytest.raises(TypeError, match="takes a row"):
        provider.get_logger("d").log(data)


def test_log_rejects_a_list_holding_something_other_than_rows(provider):
    with pytest.raises(TypeError, match="item 1 is a int"):
        provider.get_logger("d").log([{"a": 1}, 2])


def test_non_string_keys_are_converted_with_str(provider, recording):
    provider.get_logger("d").log({1: 10, None: 20, ("a", 2): 30, 2.5: 40})

    assert sorted(columns(provider, recording)) == ["('a', 2)", "1", "2.5", "None"]


def test_keys_that_collide_after_str_reject_their_row_with_one_warning(
    provider, recording, caplog
):
    caplog.set_level(logging.WARNING)

    provider.get_logger("d").log([{"k": 1}, {1: "int key", "1": "str key"}, {"k": 3}])

    assert columns(provider, recording)["k"].count == 2
    status = dataset_status(provider)
    assert (status.rows_received, status.rows_tracked, status.rows_rejected) == (3, 2, 1)
    assert "both name the column '1'" in status.last_rejection
    assert len(profiletel_records(caplog, logging.WARNING)) == 1


def test_a_key_whose_str_raises_rejects_its_row_and_keeps_the_others(provider, recording):
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    provider.get_logger("d").log([{"k": 1}, {Hostile(): 2}, {"k": 3}])

    assert columns(provider, recording)["k"].count == 2
    status = dataset_status(provider)
    assert (status.rows_tracked, status.rows_rejected) == (2, 1)
    assert status.last_rejection == "RuntimeError: no str for you"


def test_an_empty_row_logs_nothing_and_is_skipped_in_a_list(provider, recording):
    logger = provider.get_logger("d")

    logger.log({})
    logger.log([{}, {"a": 1}, {}])

    assert columns(provider, recording)["a"].count == 1
    status = dataset_status(provider)
    assert (status.rows_received, status.rows_tracked) == (1, 1)


def test_nested_dicts_count_as_objects_and_lists_as_tensors(provider, recording):
    provider.get_logger("d").log({"nested": {"b": {"c": 1}}, "list": [1, 2, 3]})

    found = columns(provider, recording)
    assert present_types(found["nested"]) == {"object": 1}
    assert present_types(found["list"]) == {"tensor": 1}


def test_bytes_decimal_numpy_and_datetime_values_get_these_types(provider, recording):
    provider.get_logger("d").log(
        {
            "bytes": b"\x00\xff",
            "decimal": decimal.Decimal("1.5"),
            "np_int": np.int64(3),
            "np_float": np.float32(2.5),
            "np_bool": np.bool_(True),
            "np_0d": np.array(5),
            "datetime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
            "date": dt.date(2024, 1, 1),
            "bool": True,
        }
    )

    found = {name: present_types(summary) for name, summary in columns(provider, recording).items()}
    assert found == {
        "bytes": {"object": 1},
        "decimal": {"fractional": 1},
        "np_int": {"integral": 1},
        "np_float": {"fractional": 1},
        "np_bool": {"boolean": 1},
        "np_0d": {"object": 1},
        "datetime": {"object": 1},
        "date": {"object": 1},
        "bool": {"boolean": 1},
    }
    assert columns(provider, recording)["decimal"].mean == 1.5


def test_none_and_nan_count_as_null_and_infinity_as_fractional(provider, recording):
    provider.get_logger("d").log(
        {"none": None, "nan": math.nan, "np_nan": np.float64("nan"), "inf": math.inf,
         "ninf": -math.inf}
    )

    found = columns(provider, recording)
    assert [(found[c].count, found[c].nulls, found[c].nans) for c in ("none", "nan", "np_nan")] == [
        (1, 1, 0), (1, 1, 1), (1, 1, 1)
    ]
    assert present_types(found["inf"]) == {"fractional": 1}
    assert found["ninf"].min == -math.inf


def test_a_one_megabyte_string_is_counted_without_being_stored(provider, recording):
    provider.get_logger("d").log({"s": "x" * 1_000_000})

    assert present_types(columns(provider, recording)["s"]) == {"string": 1}
    # whylogs keeps sketches, not values: the profile stays small.
    assert len(recording.profiles[0].serialize()) < 20_000


def test_a_row_of_ten_thousand_columns_is_refused_in_the_caller(provider):
    with pytest.raises(ValueError, match="10000 columns, more than the limit of 1000"):
        provider.get_logger("d").log({f"c{i}": i for i in range(10_000)})

    assert provider.status().processors[0].datasets == {}


def test_the_column_limit_is_set_by_profiletel_max_columns(provider, recording, monkeypatch):
    monkeypatch.setenv("PROFILETEL_MAX_COLUMNS", "5")
    logger = provider.get_logger("d")

    logger.log({f"c{i}": i for i in range(5)})
    with pytest.raises(ValueError, match="6 columns, more than the limit of 5"):
        logger.log({f"c{i}": i for i in range(6)})
    with pytest.raises(ValueError, match="6 columns, more than the limit of 5"):
        logger.log(pd.DataFrame({f"c{i}": [i] for i in range(6)}))

    assert len(columns(provider, recording)) == 5


def test_a_column_missing_from_a_row_counts_as_null_in_that_row(provider, recording):
    # The rule of whylogs' profile of the same rows as one DataFrame: a key absent from
    # a row is a null there, once the column exists in the bucket's profile.
    rows = [{"a": 1, "b": 2}, {"a": 3}, {"a": 4, "b": None}, {"b": 5}]

    provider.get_logger("d").log(rows)

    found = columns(provider, recording)
    assert (found["a"].count, found["a"].nulls) == (4, 1)
    assert (found["b"].count, found["b"].nulls) == (4, 2)


def test_vanishing_columns_give_the_same_profile_whatever_the_batching(tmp_path):
    rows = [{"a": 1, "b": 2}, {"a": 3}, {"a": 4, "b": None}, {"b": 5}]
    one_call, one_call_per_row = RecordingExporter(), RecordingExporter()
    together = ProfileProvider([BatchProfileProcessor([one_call], write_schedule=None,
                                                      dead_letter_dir=tmp_path)])
    apart = ProfileProvider([BatchProfileProcessor([one_call_per_row], write_schedule=None,
                                                   dead_letter_dir=tmp_path)])

    together.get_logger("d").log(rows)
    for row in rows:
        # sync: each row is tracked on its own before the next one arrives.
        apart.get_logger("d").log(row, sync=True)

    def counts(found: dict[str, ColumnSummary]) -> dict[str, tuple]:
        # Exact figures only: a merged stddev may differ in its last bit.
        return {c: (s.count, s.nulls, present_types(s), s.min, s.max) for c, s in found.items()}

    assert counts(columns(together, one_call)) == counts(columns(apart, one_call_per_row)) == {
        "a": (4, 1, {"integral": 3}, 1, 4),
        "b": (4, 2, {"integral": 2}, 2, 5),
    }
    together.shutdown(timeout_s=10)
    apart.shutdown(timeout_s=10)


def test_an_empty_string_key_is_a_column_named_empty(provider, recording):
    provider.get_logger("d").log({"": 1, "a": 2})

    assert sorted(columns(provider, recording)) == ["", "a"]


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ({"n": 2, "s": "lone surrogate \ud800"}, "RuntimeError"),
        ({"n": 2**70, "s": "int beyond int64"}, "OverflowError"),
        ({"n": decimal.Decimal("sNaN"), "s": "signalling NaN"}, "InvalidOperation"),
    ],
)
def test_a_row_whylogs_cannot_track_is_rejected_and_the_rest_of_its_batch_kept(
    provider, recording, caplog, bad_row, reason
):
    caplog.set_level(logging.WARNING)
    rows = [{"n": 1, "s": "first"}, bad_row, {"n": 3, "s": "third"}]

    provider.get_logger("d").log(rows)

    found = columns(provider, recording)
    assert (found["n"].count, found["n"].min, found["n"].max) == (2, 1, 3)
    status = dataset_status(provider)
    assert (status.rows_received, status.rows_tracked, status.rows_rejected) == (3, 2, 1)
    assert status.last_rejection.startswith(reason)
    warnings = profiletel_records(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert "counted as rejected" in warnings[0].getMessage()


# DataFrames


def test_an_empty_frame_logs_nothing(provider):
    logger = provider.get_logger("d")

    logger.log(pd.DataFrame())
    logger.log(pd.DataFrame({"a": []}))
    logger.log(pd.DataFrame(index=[1, 2]))

    assert provider.status().processors[0].datasets == {}


def test_a_frame_with_repeated_column_names_is_refused(provider):
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"])

    with pytest.raises(ValueError, match=r"column names repeat: \['a'\]"):
        provider.get_logger("d").log(frame)


def test_frame_column_names_that_are_not_strings_are_converted_with_str(provider, recording):
    provider.get_logger("d").log(pd.DataFrame({1: [1, 2], 2.5: [3, 4], "b": [5, 6]}))

    assert sorted(columns(provider, recording)) == ["1", "2.5", "b"]


def test_frame_column_names_that_collide_after_str_are_refused(provider):
    with pytest.raises(ValueError, match=r"column names repeat: \['1'\]"):
        provider.get_logger("d").log(pd.DataFrame({1: [1], "1": [2]}))


def test_multiindex_columns_become_their_levels_joined_by_dots(provider, recording):
    frame = pd.DataFrame(
        [[1, 2, 3]], columns=pd.MultiIndex.from_tuples([("x", "a"), ("x", "b"), ("id", "")])
    )

    provider.get_logger("d").log(frame)

    assert sorted(columns(provider, recording)) == ["id", "x.a", "x.b"]


def test_categorical_and_nullable_dtypes_are_profiled_with_their_nulls(provider, recording):
    frame = pd.DataFrame(
        {
            "category": pd.Categorical(["a", "b", "a"]),
            "int64": pd.array([1, None, 3], dtype="Int64"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
            "string": pd.array(["x", None, "z"], dtype="string"),
        }
    )

    provider.get_logger("d").log(frame)

    found = columns(provider, recording)
    assert {name: (s.count, s.nulls, present_types(s)) for name, s in found.items()} == {
        "category": (3, 0, {"string": 3}),
        "int64": (3, 1, {"integral": 2}),
        "boolean": (3, 1, {"boolean": 2}),
        "string": (3, 1, {"string": 2}),
    }


def test_timezone_aware_datetime_columns_are_counted_as_objects_with_their_nulls(
    provider, recording
):
    times = pd.to_datetime(["2024-01-01T00:00:00", None, "2024-01-02T00:00:00"])
    frame = pd.DataFrame({"utc": times.tz_localize("UTC"),
                          "paris": times.tz_localize("Europe/Paris")})

    provider.get_logger("d").log(frame)

    found = columns(provider, recording)
    assert {name: (s.count, s.nulls, present_types(s)) for name, s in found.items()} == {
        "utc": (3, 1, {"object": 2}),
        "paris": (3, 1, {"object": 2}),
    }


def test_a_frame_mutated_after_log_returns_is_profiled_as_it_was(provider, recording):
    frame = pd.DataFrame({"a": [1, 2, 3]})

    provider.get_logger("d").log(frame)
    frame.loc[:, "a"] = 100
    frame["b"] = ["late", "late", "late"]
    frame.drop(index=0, inplace=True)

    found = columns(provider, recording)
    assert sorted(found) == ["a"]
    assert (found["a"].count, found["a"].min, found["a"].max) == (3, 1, 3)


# Timestamps


def bucket_starts(provider: ProfileProvider, recording: RecordingExporter) -> list[int]:
    assert provider.force_flush(timeout_s=30)
    return sorted(p.bucket_start_ms for p in recording.profiles)


@pytest.mark.parametrize("timestamp", [-1, -1_000_000_000_000, -(10**30), -0.5])
def test_a_timestamp_before_1970_is_refused(provider, timestamp):
    with pytest.raises(ValueError, match="before 1970-01-01"):
        provider.get_logger("d").log({"a": 1}, timestamp_ms=timestamp)


def test_a_timestamp_more_than_a_day_ahead_is_refused_and_a_day_ahead_accepted(
    provider, recording
):
    now_ms = time.time_ns() // 1_000_000
    logger = provider.get_logger("d")

    with pytest.raises(ValueError, match="more than one day in the future"):
        logger.log({"a": 1}, timestamp_ms=now_ms + 2 * 86_400_000)
    with pytest.raises(ValueError, match="more than one day in the future"):
        logger.log({"a": 1}, timestamp_ms=10**30)
    ahead = now_ms + 86_400_000 - 60_000
    logger.log({"a": 1}, timestamp_ms=ahead)

    assert bucket_starts(provider, recording) == [ahead - ahead % HOUR_MS]


def test_a_timestamp_that_looks_like_seconds_warns_once_per_logger(provider, caplog):
    caplog.set_level(logging.WARNING)
    first, second = provider.get_logger("d"), provider.get_logger("d")

    first.log({"a": 1}, timestamp_ms=1_700_000_000)
    first.log({"a": 2}, timestamp_ms=1_700_000_001)
    second.log({"a": 3}, timestamp_ms=0)

    messages = [r.getMessage() for r in profiletel_records(caplog, logging.WARNING)]
    assert len(messages) == 2
    assert "timestamp 1700000000, which is before 1971" in messages[0]
    assert "multiply it by 1000" in messages[0]
    assert "timestamp 0, which is before 1971" in messages[1]


@pytest.mark.parametrize(
    "timestamp",
    [
        SOME_MS + 0.9,
        np.int64(SOME_MS),
        np.float64(SOME_MS),
        np.datetime64(SOME_MS * 1_000_000 + 456_789, "ns"),
        pd.Timestamp(SOME_MS * 1_000_000, tz="UTC"),
        pd.Timestamp(SOME_MS * 1_000_000, tz="UTC").tz_convert("Asia/Tokyo"),
        dt.datetime.fromtimestamp(SOME_MS / 1000, tz=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_float_numpy_and_pandas_timestamps_land_in_their_utc_bucket(
    provider, recording, timestamp
):
    provider.get_logger("d").log({"a": 1}, timestamp_ms=timestamp)

    assert bucket_starts(provider, recording) == [SOME_MS - SOME_MS % HOUR_MS]


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        (pd.NaT, "NaT"),
        (np.datetime64("NaT"), "NaT"),
        (pd.Timestamp("2024-01-01"), "naive datetime"),
        (math.nan, "finite number"),
        (math.inf, "finite number"),
    ],
)
def test_missing_naive_and_non_finite_timestamps_are_refused(provider, timestamp, message):
    with pytest.raises(ValueError, match=message):
        provider.get_logger("d").log({"a": 1}, timestamp_ms=timestamp)


# Dataset ids

HOSTILE_IDS = [
    "x" * 10_000,
    "..",
    ".",
    "../../etc/passwd",
    "/",
    "a/b",
    "back\\slash",
    "nul\x00byte",
    "\x00",
    "😀 emoji",
    "CON",
    "nul",
    "COM1",
    "lpt9.txt",
    "trailing.",
    " ",
]


def test_dataset_id_must_be_a_non_empty_valid_string(provider):
    with pytest.raises(ValueError, match="must not be empty"):
        provider.get_logger("")
    with pytest.raises(TypeError, match="must be a str"):
        provider.get_logger(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lone surrogate"):
        provider.get_logger("bad \ud800")


def assert_safe_tree(root: Path) -> list[Path]:
    windows_reserved = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT")
                                                       for n in range(10)}
    files = [path for path in root.rglob("*") if path.is_file()]
    for path in files:
        assert path.resolve().is_relative_to(root.resolve())
        for part in path.relative_to(root).parts:
            assert part not in (".", "..")
            assert len(part.encode()) <= 255
            assert not part.endswith((".", " "))
            assert part.split(".")[0].upper() not in windows_reserved
            assert all(ch.isascii() and ch.isprintable() for ch in part)
            assert "\\" not in part
    return files


def test_hostile_dataset_ids_stay_inside_the_local_exporter_folder(tmp_path):
    base = tmp_path / "profiles"
    provider = ProfileProvider(
        [BatchProfileProcessor([LocalExporter(base)], write_schedule=None,
                               dead_letter_dir=tmp_path / "dead")]
    )

    for index, dataset_id in enumerate(HOSTILE_IDS):
        provider.get_logger(dataset_id).log({"index": index})
    assert provider.shutdown(timeout_s=30)

    assert len(assert_safe_tree(base)) == len(HOSTILE_IDS)
    read_back = {p.dataset_id: p.row_count for p in read_profiles(base)}
    assert read_back == {dataset_id: 1 for dataset_id in HOSTILE_IDS}
    assert not os.path.exists(tmp_path / "etc")


def test_hostile_dataset_ids_stay_inside_the_dead_letter_folder(tmp_path):
    dead = tmp_path / "dead"
    refusing = RecordingExporter(fail_times=-1, error=PermanentExportError("no"))
    provider = ProfileProvider(
        [BatchProfileProcessor([refusing], write_schedule=None, dead_letter_dir=dead)]
    )

    for index, dataset_id in enumerate(HOSTILE_IDS):
        provider.get_logger(dataset_id).log({"index": index})
    provider.shutdown(timeout_s=30)

    assert len(assert_safe_tree(dead)) == 2 * len(HOSTILE_IDS)  # profile and sidecar
    letters = list(DeadLetterStore(dead))
    assert sorted(letter.load().dataset_id for letter in letters) == sorted(HOSTILE_IDS)
