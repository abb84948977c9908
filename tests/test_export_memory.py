"""An exporter that stops answering cannot make profiles pile up in memory."""

from __future__ import annotations

from pathlib import Path

from conftest import RecordingExporter
from profiletel import BucketProfile, DeadLetterStore
from profiletel._export import ExportChannel
from whylogs.core import DatasetProfile


def make_profile(index: int) -> BucketProfile:
    profile = DatasetProfile()
    profile.track(row={"index": index})
    return BucketProfile("d", 3_600_000 * index, profile.view())


def test_a_channel_keeps_at_most_max_pending_profiles_and_dead_letters_the_oldest(
    tmp_path: Path,
):
    store = DeadLetterStore(tmp_path)
    channel = ExportChannel(RecordingExporter(), store, max_pending=2)

    channel.add([make_profile(i) for i in range(3)])
    channel.add([make_profile(i) for i in range(3, 5)])

    assert channel.pending == 2
    assert channel.dead_lettered == 3
    letters = sorted(store, key=lambda letter: letter.info["bucket_start_ms"])
    assert [letter.info["bucket_start_ms"] // 3_600_000 for letter in letters] == [0, 1, 2]
    assert letters[0].info["last_error"] == (
        "more than 2 profiles were waiting for this exporter"
    )
