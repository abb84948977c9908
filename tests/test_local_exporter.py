"""The built-in ``local`` exporter."""

from __future__ import annotations

from pathlib import Path

import pytest
import whylogs as why

import profiletel
from profiletel import BatchProfileProcessor, ProfileProvider, create_exporter, safe_path_part
from profiletel._read import read_profiles


def _log_one(tmp_path: Path, dataset_id: str, base_dir: Path) -> None:
    exporter = create_exporter("local", base_dir=base_dir)
    provider = ProfileProvider(
        processors=[BatchProfileProcessor([exporter], dead_letter_dir=tmp_path / "dead")]
    )
    provider.get_logger(dataset_id).log({"x": 1}, timestamp_ms=1_357_016_400_000)
    assert provider.shutdown(timeout_s=10)


def test_profile_file_names_dataset_and_bucket_and_reads_back_with_whylogs(
    tmp_path: Path,
) -> None:
    _log_one(tmp_path, "orders", tmp_path / "profiles")

    [written] = list((tmp_path / "profiles").rglob("*.bin"))
    assert written.parent == tmp_path / "profiles" / "orders"
    assert written.name.startswith("orders.20130101T050000Z.")
    view = why.read(str(written)).view()
    assert view.get_column("x").get_metric("counts").n.value == 1
    assert view.dataset_timestamp.isoformat() == "2013-01-01T05:00:00+00:00"


@pytest.mark.parametrize(
    "dataset_id",
    ["../../etc", "..", ".", "a/b", "/abs/path", "with space", "straße", "données/../x",
     "CON", "nul\x00byte", "🚀", "x" * 500],
)
def test_no_dataset_id_writes_outside_base_dir(tmp_path: Path, dataset_id: str) -> None:
    base = tmp_path / "profiles"
    _log_one(tmp_path, dataset_id, base)

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1
    [written] = files
    assert written.resolve().is_relative_to(base.resolve())
    assert written.parent.parent == base
    assert read_profiles(base)[0].dataset_id == dataset_id


def test_safe_path_part_is_reversible_for_short_names() -> None:
    for name in ["../../etc", "a b/c", "straße", "CON", ".hidden"]:
        part = safe_path_part(name)
        assert "/" not in part and not part.startswith(".")
        assert profiletel.unsafe_path_part(part) == name


def test_writes_leave_no_temporary_file(tmp_path: Path) -> None:
    _log_one(tmp_path, "orders", tmp_path / "profiles")

    leftovers = [p.name for p in (tmp_path / "profiles").rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_base_dir_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROFILETEL_LOCAL_DIR", str(tmp_path / "from-env"))
    exporter = create_exporter("local")
    assert exporter.base_dir == tmp_path / "from-env"  # type: ignore[attr-defined]


def test_long_segment_values_keep_file_names_under_255_bytes(tmp_path: Path) -> None:
    from whylogs.core import DatasetSchema
    from whylogs.core.segmentation_partition import segment_on_column

    column = "c" * 200
    exporter = create_exporter("local", base_dir=tmp_path / "profiles")
    provider = ProfileProvider(
        processors=[BatchProfileProcessor([exporter], dead_letter_dir=tmp_path / "dead")]
    )
    schema = DatasetSchema(segments=segment_on_column(column))
    provider.get_logger("d" * 300, schema=schema).log({column: "v" * 200, "n": 1})

    assert provider.shutdown(timeout_s=10)

    [written] = list((tmp_path / "profiles").rglob("*.bin"))
    assert len(written.name.encode()) < 255
    [profile] = read_profiles(tmp_path / "profiles")
    assert profile.segment == ((column, "v" * 200),)
