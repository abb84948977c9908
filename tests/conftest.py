"""Shared fixtures. Every test starts with no global provider and an empty pre-configure
buffer, and any provider it installs is shut down afterwards."""

from __future__ import annotations

import os

# whylogs posts usage statistics to its own server unless this is set before it is
# imported; tests, and the subprocesses they start, must not reach other hosts.
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from whylogs.api.writer import Writer  # noqa: E402

import profiletel  # noqa: E402
from profiletel import _provider  # noqa: E402

# The loopback S3 and WhyLabs server fixtures, `s3` and `whylabs`.
pytest_plugins = ("servers",)


@pytest.fixture(autouse=True)
def _fresh_global_provider() -> Iterator[None]:
    _reset_global()
    yield
    provider = profiletel.get_provider()
    if provider is not None and not provider.is_shut_down:
        provider.shutdown(timeout_s=5)
    _reset_global()


def _reset_global() -> None:
    sink = _provider._global
    with sink.lock:
        sink.provider = None
        sink._buffer = []
        sink.buffered_rows = 0
        sink.overflowed_rows = 0
        sink.datasets = _provider._Datasets()


class RecordingExporter(Writer):
    """Keeps every profile it is given; fails the first ``fail_times`` calls, or every
    call when ``fail_times`` is -1."""

    exporter_name = "recording"

    def __init__(self, fail_times: int = 0, error: BaseException | None = None) -> None:
        self.fail_times = fail_times
        self.error = error
        self.calls = 0
        self.profiles: list[Any] = []

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        self.calls += 1
        if self.fail_times < 0 or self.calls <= self.fail_times:
            if self.error is not None:
                raise self.error
            return False, "recording exporter told to fail"
        self.profiles.append(file)
        return True, "kept"

    def option(self, **kwargs: Any) -> RecordingExporter:
        return self


@pytest.fixture
def recording() -> RecordingExporter:
    return RecordingExporter()
