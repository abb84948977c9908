"""The retry middleware and the dead-letter directory, shared by every exporter."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import whylogs as why
from whylogs.api.writer import Writer

from conftest import RecordingExporter
from profiletel import BatchProfileProcessor, PermanentExportError, ProfileProvider


def _provider(tmp_path: Path, *exporters: Writer) -> ProfileProvider:
    processor = BatchProfileProcessor(
        list(exporters), write_schedule=None, dead_letter_dir=tmp_path / "dead"
    )
    return ProfileProvider(processors=[processor])


def test_profile_that_always_fails_is_dead_lettered_after_three_attempts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failing = RecordingExporter(fail_times=-1, error=ConnectionError("destination down"))
    provider = _provider(tmp_path, failing)
    provider.get_logger("orders").log({"amount": 3.0}, timestamp_ms=7_200_000)

    assert provider.force_flush(timeout_s=10) is False
    assert provider.status().pending_exports == 1
    with caplog.at_level(logging.ERROR, logger="profiletel"):
        assert provider.shutdown(timeout_s=10) is False

    assert failing.calls == 3
    status = provider.status()
    assert (status.pending_exports, status.dead_lettered) == (0, 1)
    [binary] = list((tmp_path / "dead").rglob("*.bin"))
    sidecar = json.loads(binary.with_suffix(".json").read_text())
    assert sidecar["dataset_id"] == "orders"
    assert sidecar["bucket_start"] == "1970-01-01T02:00:00Z"
    assert sidecar["exporter"] == "recording"
    assert sidecar["attempts"] == 3
    assert sidecar["last_error"] == "ConnectionError: destination down"
    assert why.read(str(binary)).view().get_column("amount").get_metric("counts").n.value == 1
    assert any(str(binary) in record.getMessage() for record in caplog.records)


def test_profile_that_fails_twice_then_succeeds_is_delivered_once(tmp_path: Path) -> None:
    flaky = RecordingExporter(fail_times=2)
    provider = _provider(tmp_path, flaky)
    provider.get_logger("orders").log({"amount": 3.0}, timestamp_ms=0)

    assert provider.shutdown(timeout_s=10) is True

    assert flaky.calls == 3
    assert len(flaky.profiles) == 1
    assert provider.status().dead_lettered == 0
    assert not list((tmp_path / "dead").rglob("*.bin"))


def test_a_failing_exporter_does_not_hold_back_the_others(tmp_path: Path) -> None:
    failing, healthy = RecordingExporter(fail_times=-1), RecordingExporter()
    provider = _provider(tmp_path, failing, healthy)
    for hour in range(3):
        provider.get_logger("orders").log({"n": hour}, timestamp_ms=hour * 3_600_000)

    provider.shutdown(timeout_s=10)

    assert len(healthy.profiles) == 3
    assert failing.calls == 9
    assert len(list((tmp_path / "dead" / "recording").rglob("*.bin"))) == 3


def test_permanent_failure_is_dead_lettered_after_one_attempt(tmp_path: Path) -> None:
    refusing = RecordingExporter(fail_times=-1, error=PermanentExportError("HTTP 403"))
    provider = _provider(tmp_path, refusing)
    provider.get_logger("orders").log({"n": 1}, timestamp_ms=0)

    provider.force_flush(timeout_s=10)

    assert refusing.calls == 1
    assert provider.status().dead_lettered == 1


class HangingExporter(Writer):
    exporter_name = "hanging"

    def __init__(self) -> None:
        self.release = threading.Event()

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        self.release.wait(60)
        return True, "late"

    def option(self, **kwargs: Any) -> Writer:
        return self


def test_shutdown_returns_within_its_timeout_when_an_exporter_hangs(tmp_path: Path) -> None:
    hanging = HangingExporter()
    provider = _provider(tmp_path, hanging)
    provider.get_logger("orders").log({"n": 1}, timestamp_ms=0)

    started = time.monotonic()
    delivered = provider.shutdown(timeout_s=2)
    elapsed = time.monotonic() - started
    hanging.release.set()

    assert delivered is False
    assert elapsed < 10, "shutdown must not wait for a hung exporter"
    assert len(list((tmp_path / "dead" / "hanging").rglob("*.bin"))) == 1


class _ExitingExporter(Writer):
    exporter_name = "exiting"

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        raise SystemExit(3)

    def option(self, **kwargs: Any) -> Writer:
        return self


def test_an_exporter_raising_system_exit_loses_no_profile(tmp_path: Path) -> None:
    provider = _provider(tmp_path, _ExitingExporter())
    for hour in range(3):
        provider.get_logger("orders").log({"n": hour}, timestamp_ms=hour * 3_600_000)

    assert provider.shutdown(timeout_s=10) is False

    status = provider.status()
    assert (status.dead_lettered, status.processors[0].profiles_lost) == (3, 0)
    assert len(list((tmp_path / "dead" / "exiting").rglob("*.bin"))) == 3


def test_a_column_met_after_a_rejected_row_still_counts_every_row_of_the_bucket(
    tmp_path: Path,
) -> None:
    recording = RecordingExporter()
    provider = _provider(tmp_path, recording)
    log = provider.get_logger("orders")
    for row in ({"a": 1}, {"a": 10**30}, {"a": 2}, {"b": "x", "a": 3}):
        log.log(row, timestamp_ms=0, sync=row["a"] != 10**30)

    provider.shutdown(timeout_s=10)

    [profile] = recording.profiles
    columns = profile.view.get_columns()
    assert provider.status().rows_rejected == 1
    assert columns["a"].get_metric("counts").n.value == 3
    assert columns["b"].get_metric("counts").n.value == 3
    assert columns["b"].get_metric("counts").null.value == 2
