"""Exporter lookup by name: the built-in entry point, create_exporter, in-process plugins."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest

import profiletel
from conftest import RecordingExporter
from profiletel import ConfigurationError, hookimpl


def test_local_exporter_is_registered_through_an_entry_point() -> None:
    [entry_point] = [
        ep for ep in metadata.entry_points(group="profiletel") if ep.name == "local"
    ]
    assert entry_point.value == "profiletel_exporters.local"
    assert entry_point.dist is not None and entry_point.dist.metadata["Name"] == "profiletel"

    by_name = {info.name: info for info in profiletel.list_exporters()}
    assert by_name["local"].plugin.distribution == "profiletel"
    assert by_name["local"].plugin.loaded is True


def test_create_exporter_builds_by_name(tmp_path: Any) -> None:
    exporter = profiletel.create_exporter("local", base_dir=tmp_path)
    assert type(exporter).__name__ == "LocalExporter"


def test_unknown_exporter_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="no exporter named 'nope'.*local"):
        profiletel.create_exporter("nope")


def test_unknown_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="exporter 'local' rejected its options"):
        profiletel.create_exporter("local", colour="blue")


class _InHousePlugin:
    @hookimpl
    def profiletel_exporters(self) -> dict[str, Any]:
        return {"in-house": RecordingExporter}


def test_plugin_registered_in_process_is_usable_by_name_in_configure(tmp_path: Any) -> None:
    profiletel.register_plugin(_InHousePlugin(), name="in-house-plugin")
    try:
        provider = profiletel.configure(
            exporters=["in-house"], write_schedule=None, dead_letter_dir=tmp_path
        )
        profiletel.get_logger("t").log({"x": 1}, timestamp_ms=0)
        provider.force_flush(timeout_s=10)
        [exporter] = provider.processors[0].exporters
        assert len(exporter.profiles) == 1  # type: ignore[attr-defined]
    finally:
        profiletel.unregister_plugin("in-house-plugin")
