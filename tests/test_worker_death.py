"""A worker thread that dies is noticed, reported once, and replaced; what it had not yet
tracked is kept."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import RecordingExporter
from profiletel import BatchProfileProcessor, ProfileProvider
from profiletel._buckets import DatasetAggregate

WAIT_S = 30.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {WAIT_S} s waiting until {what}")
        time.sleep(0.01)


@pytest.fixture
def kill_worker_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first DatasetAggregate.commit raises MemoryError before touching anything, as
    an allocation failure would; later calls work. Returns the list of failed calls."""
    original = DatasetAggregate.commit
    failures: list[int] = []

    def commit(self: DatasetAggregate) -> int:
        if not failures:
            failures.append(self.staged)
            raise MemoryError("simulated")
        return original(self)

    monkeypatch.setattr(DatasetAggregate, "commit", commit)
    return failures


@pytest.fixture
def provider(recording: RecordingExporter, tmp_path: Path) -> Iterator[ProfileProvider]:
    provider = ProfileProvider(
        [BatchProfileProcessor([recording], write_schedule=None, dead_letter_dir=tmp_path)]
    )
    yield provider
    if not provider.is_shut_down:
        provider.shutdown(timeout_s=10)


def exported_rows(recording: RecordingExporter) -> int:
    return sum(profile.row_count for profile in recording.profiles)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("profiletel") and r.levelno >= logging.ERROR]


def test_the_next_log_after_a_worker_death_logs_one_error_and_starts_a_worker(
    provider, recording, kill_worker_once, caplog
):
    caplog.set_level(logging.WARNING)
    logger = provider.get_logger("d")
    processor = provider.processors[0]

    logger.log([{"a": i} for i in range(5)])
    wait_until(lambda: not processor.status().worker_alive, "the worker died")
    logger.log([{"a": i} for i in range(5, 8)])
    logger.log({"a": 8})

    status = processor.status()
    assert (status.worker_alive, status.worker_restarts) == (True, 1)
    assert kill_worker_once == [5]
    assert provider.shutdown(timeout_s=30)
    assert exported_rows(recording) == 9
    assert len(errors(caplog)) == 1
    assert "The profiling worker died (MemoryError: simulated)" in errors(caplog)[0]


def test_shutdown_of_a_provider_whose_worker_died_exports_what_it_holds(
    provider, recording, kill_worker_once, caplog
):
    caplog.set_level(logging.WARNING)
    processor = provider.processors[0]

    provider.get_logger("d").log([{"a": i} for i in range(5)])
    wait_until(lambda: not processor.status().worker_alive, "the worker died")

    assert provider.shutdown(timeout_s=30)
    assert exported_rows(recording) == 5
    assert len(errors(caplog)) == 1


def test_a_flush_whose_request_died_with_the_worker_asks_the_next_worker(
    provider, recording, kill_worker_once
):
    provider.get_logger("d").log([{"a": i} for i in range(5)])

    # The flush request and the rows reach the worker together, and it dies on them.
    assert provider.force_flush(timeout_s=30)

    assert kill_worker_once == [5]
    assert exported_rows(recording) == 5
    assert provider.processors[0].status().worker_restarts == 1


def test_a_sync_log_whose_rows_the_dying_worker_held_raises_at_once(
    provider, recording, kill_worker_once
):
    logger = provider.get_logger("d")

    with pytest.raises(RuntimeError, match="worker died while it held these rows"):
        logger.log({"a": 1}, sync=True)
    logger.log({"a": 2}, sync=True)

    assert provider.shutdown(timeout_s=30)
    # The rows of the failed call were staged before the worker died, so they are kept.
    assert exported_rows(recording) == 2
