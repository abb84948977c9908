"""The queue between callers and the worker is bounded by rows and by DataFrame bytes;
what does not fit is dropped (or waited for, with queue_full="block"), counted per
dataset and reported in a rate-limited warning."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import RecordingExporter
from profiletel import BatchProfileProcessor, ProfileProvider
from profiletel._processor import frame_nbytes

WAIT_S = 30.0


class StalledWorker:
    """Holds the processor's worker inside its drain step until released, so that the
    queue fills deterministically."""

    def __init__(self, processor: BatchProfileProcessor, monkeypatch: pytest.MonkeyPatch):
        self.entered = threading.Event()
        self.gate = threading.Event()
        original = processor._drain

        def stalled_drain() -> None:
            self.entered.set()
            self.gate.wait(WAIT_S)
            original()

        monkeypatch.setattr(processor, "_drain", stalled_drain)
        processor._wake.set()
        assert self.entered.wait(WAIT_S), "the worker never reached its drain step"

    def release(self) -> None:
        self.gate.set()


def make_provider(recording: RecordingExporter, tmp_path: Path, **options: Any) -> ProfileProvider:
    return ProfileProvider(
        [BatchProfileProcessor([recording], write_schedule=None, dead_letter_dir=tmp_path,
                               **options)]
    )


@pytest.fixture
def providers() -> Iterator[list[ProfileProvider]]:
    made: list[ProfileProvider] = []
    yield made
    for provider in made:
        if not provider.is_shut_down:
            provider.shutdown(timeout_s=10)


def exported_rows(recording: RecordingExporter, dataset_id: str | None = None) -> int:
    return sum(p.row_count for p in recording.profiles
               if dataset_id is None or p.dataset_id == dataset_id)


def drop_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "profiletel._processor" and r.levelno == logging.WARNING]


def test_rows_beyond_max_queue_rows_are_dropped_counted_per_dataset_and_warned_once(
    recording, tmp_path, monkeypatch, caplog, providers
):
    caplog.set_level(logging.WARNING)
    provider = make_provider(recording, tmp_path, max_queue_rows=10)
    providers.append(provider)
    stalled = StalledWorker(provider.processors[0], monkeypatch)

    for i in range(8):
        provider.get_logger("a").log({"x": i})
    for i in range(7):
        provider.get_logger("b").log({"x": i})
    stalled.release()
    assert provider.force_flush(timeout_s=30)

    datasets = provider.status().processors[0].datasets
    assert (datasets["a"].rows_dropped, datasets["b"].rows_dropped) == (0, 5)
    assert provider.status().rows_dropped == 5
    assert len(drop_warnings(caplog)) == 1
    assert "dropped 1 row(s) since the last warning" in drop_warnings(caplog)[0]

    assert provider.shutdown(timeout_s=30)
    assert (exported_rows(recording, "a"), exported_rows(recording, "b")) == (8, 2)
    assert len(drop_warnings(caplog)) == 2
    assert "4 more row(s) were dropped" in drop_warnings(caplog)[1]


def test_the_drop_warning_repeats_after_its_interval_with_the_count_since_the_last(
    recording, tmp_path, monkeypatch, caplog, providers
):
    caplog.set_level(logging.WARNING)
    provider = make_provider(recording, tmp_path, max_queue_rows=1)
    providers.append(provider)
    stalled = StalledWorker(provider.processors[0], monkeypatch)
    logger = provider.get_logger("a")

    logger.log({"x": 0})
    logger.log({"x": 1})
    logger.log({"x": 2})
    logger.log({"x": 3})
    monkeypatch.setattr("profiletel._processor._DROP_WARNING_EVERY_S", 0.0)
    logger.log({"x": 4})
    stalled.release()

    counts = [message.split("dropped ")[1].split(" row")[0] for message in drop_warnings(caplog)]
    assert counts == ["1", "3"]


def test_frames_beyond_max_queue_bytes_are_dropped_and_counted_by_their_rows(
    recording, tmp_path, monkeypatch, providers
):
    frame = pd.DataFrame({"x": range(100), "y": [0.5] * 100})
    nbytes = frame_nbytes(frame)
    provider = make_provider(recording, tmp_path, max_queue_bytes=nbytes * 5 // 2)
    providers.append(provider)
    stalled = StalledWorker(provider.processors[0], monkeypatch)
    logger = provider.get_logger("f")

    for _ in range(3):
        logger.log(frame)
    queued = provider.status().processors[0]
    stalled.release()

    assert (queued.queued_bytes, queued.queued_rows) == (2 * nbytes, 200)
    assert queued.datasets["f"].rows_dropped == 100
    assert provider.force_flush(timeout_s=30)
    status = provider.status().processors[0]
    assert (status.queued_bytes, status.datasets["f"].rows_dropped) == (0, 100)
    assert exported_rows(recording) == 200


def test_a_frame_larger_than_the_byte_limit_still_enters_an_empty_queue(
    recording, tmp_path, monkeypatch, providers
):
    provider = make_provider(recording, tmp_path, max_queue_bytes=10)
    providers.append(provider)
    stalled = StalledWorker(provider.processors[0], monkeypatch)
    logger = provider.get_logger("f")

    logger.log(pd.DataFrame({"x": range(50)}))
    logger.log(pd.DataFrame({"x": range(50)}))
    stalled.release()

    assert provider.force_flush(timeout_s=30)
    assert provider.status().processors[0].datasets["f"].rows_dropped == 50
    assert exported_rows(recording) == 50


def test_block_waits_for_room_and_loses_nothing_when_the_worker_catches_up(
    recording, tmp_path, monkeypatch, providers
):
    provider = make_provider(recording, tmp_path, max_queue_rows=2, queue_full="block",
                             block_timeout_s=WAIT_S)
    providers.append(provider)
    stalled = StalledWorker(provider.processors[0], monkeypatch)
    logger = provider.get_logger("a")
    logger.log({"x": 0})
    logger.log({"x": 1})

    releaser = threading.Timer(0.2, stalled.release)
    releaser.start()
    logger.log({"x": 2})  # waits until the worker drains
    releaser.join(WAIT_S)

    assert provider.shutdown(timeout_s=30)
    assert provider.status().rows_dropped == 0
    assert exported_rows(recording) == 3


def test_block_drops_and_counts_after_its_timeout(recording, tmp_path, monkeypatch, providers):
    provider = make_provider(recording, tmp_path, max_queue_rows=2, queue_full="block",
                             block_timeout_s=0.05)
    providers.append(provider)
    stalled = StalledWorker(provider.processors[0], monkeypatch)
    logger = provider.get_logger("a")

    for i in range(3):
        logger.log({"x": i})
    stalled.release()

    assert provider.shutdown(timeout_s=30)
    assert provider.status().processors[0].datasets["a"].rows_dropped == 1
    assert exported_rows(recording) == 2


def test_a_dropped_sync_log_raises_buffer_error(recording, tmp_path, monkeypatch, providers):
    provider = make_provider(recording, tmp_path, max_queue_rows=1)
    providers.append(provider)
    stalled = StalledWorker(provider.processors[0], monkeypatch)
    logger = provider.get_logger("a")
    logger.log({"x": 0})

    with pytest.raises(BufferError, match="queue is full; 1 row"):
        logger.log({"x": 1}, sync=True)
    stalled.release()


@pytest.mark.parametrize(
    "options",
    [{"max_queue_rows": 0}, {"max_queue_bytes": 0}, {"queue_full": "wait"},
     {"block_timeout_s": -1}],
)
def test_invalid_queue_options_are_refused(recording, tmp_path, options):
    with pytest.raises(ValueError):
        BatchProfileProcessor([recording], write_schedule=None, dead_letter_dir=tmp_path,
                              **options)
