"""The third-party exporter in ``examples/profiletel-exporter-jsonl``.

The first tests load the example from its source folder and register it in process, the
way a plugin author tests before publishing. The last one installs profiletel and the
example with pip into a fresh virtual environment, without any package index, and checks
from that environment that the entry point alone makes ``jsonl`` usable.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import site
import subprocess
import textwrap
import threading
import venv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from whylogs.core import DatasetSchema
from whylogs.core.segmentation_partition import segment_on_column

import profiletel
from profiletel import BucketProfile, PermanentExportError, TransientExportError
from profiletel._read import read_profiles

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "profiletel-exporter-jsonl"
BUCKET_10H = 1_714_557_600_000  # 2024-05-01T10:00:00Z
HOUR_MS = 3_600_000


@pytest.fixture
def jsonl_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import profiletel_exporter_jsonl

    profiletel.register_plugin(profiletel_exporter_jsonl, name="jsonl")
    yield profiletel_exporter_jsonl
    profiletel.unregister_plugin("jsonl")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _profile(dataset_id: str = "orders") -> BucketProfile:
    import whylogs as why

    view = why.log({"amount": 12.5, "country": "NL"}).view()
    return BucketProfile(dataset_id, BUCKET_10H, view)


def test_each_column_of_each_profile_becomes_one_json_line(
    jsonl_module: ModuleType, tmp_path: Path
) -> None:
    provider = profiletel.configure(
        exporters=["jsonl"], write_schedule=None, dead_letter_dir=tmp_path / "dead",
        exporter_options={"jsonl": {"path": tmp_path / "out" / "summaries.jsonl"}},
    )
    log = profiletel.get_logger("orders")
    log.log({"amount": 10.0, "country": "NL"}, timestamp_ms=BUCKET_10H + 60_000)
    log.log({"amount": 20.0, "country": None}, timestamp_ms=BUCKET_10H + 120_000)

    assert provider.shutdown(timeout_s=30) is True

    amount, country = _lines(tmp_path / "out" / "summaries.jsonl")
    profile_id = amount["profile_id"]
    assert amount == {
        "dataset_id": "orders", "bucket_start": "2024-05-01T10:00:00Z",
        "bucket_start_ms": BUCKET_10H, "segment": {}, "profile_id": profile_id,
        "column": "amount", "count": 2, "nulls": 0, "nans": 0, "types": {"fractional": 2},
        "inferred_type": "fractional", "mean": 15.0, "stddev": pytest.approx(7.0710678118),
        "min": 10.0, "max": 20.0, "distinct": pytest.approx(2.0, rel=1e-6),
    }
    assert country == {
        "dataset_id": "orders", "bucket_start": "2024-05-01T10:00:00Z",
        "bucket_start_ms": BUCKET_10H, "segment": {}, "profile_id": profile_id,
        "column": "country", "count": 2, "nulls": 1, "nans": 0, "types": {"string": 1},
        "inferred_type": "string", "mean": None, "stddev": None, "min": None, "max": None,
        "distinct": 1.0,
    }


def test_segmented_profiles_carry_their_segment(jsonl_module: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    provider = profiletel.configure(
        exporters=["jsonl"], write_schedule=None, dead_letter_dir=tmp_path / "dead",
        exporter_options={"jsonl": {"path": str(path)}},
    )
    schema = DatasetSchema(segments=segment_on_column("origin"))
    flights = profiletel.get_logger("flights", schema=schema)
    for origin in ("JFK", "LGA", "JFK"):
        flights.log({"origin": origin, "delay": 3}, timestamp_ms=BUCKET_10H)

    assert provider.shutdown(timeout_s=30) is True

    counts = {(line["segment"]["origin"], line["column"]): line["count"] for line in _lines(path)}
    assert counts == {("JFK", "delay"): 2, ("JFK", "origin"): 2,
                      ("LGA", "delay"): 1, ("LGA", "origin"): 1}


def test_appends_from_many_threads_and_exporters_never_interleave(
    jsonl_module: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "shared.jsonl"
    exporters = [jsonl_module.JsonlExporter(path) for _ in range(4)]
    profile = _profile()

    def append(exporter: Any) -> None:
        for _ in range(25):
            exporter.write(profile)

    threads = [threading.Thread(target=append, args=(e,)) for e in exporters for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    lines = _lines(path)
    assert len(lines) == 8 * 25 * 2
    assert [line["column"] for line in lines] == ["amount", "country"] * 200


def test_a_write_that_fails_half_way_is_cut_back_and_reported_transient(
    jsonl_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.jsonl"
    exporter = jsonl_module.JsonlExporter(path)
    exporter.write(_profile("first"))
    size = path.stat().st_size
    real_write = os.write

    def disk_full_after_ten_bytes(fd: int, data: Any) -> int:
        if bytes(data[:14]) == b'{"dataset_id":':
            real_write(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", disk_full_after_ten_bytes)
    with pytest.raises(TransientExportError, match="No space left on device"):
        exporter.write(_profile("second"))
    monkeypatch.undo()

    assert path.stat().st_size == size
    assert [line["dataset_id"] for line in _lines(path)] == ["first", "first"]


def test_a_folder_in_place_of_the_file_is_a_permanent_failure(
    jsonl_module: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "taken").mkdir()
    exporter = jsonl_module.JsonlExporter(tmp_path / "taken")

    with pytest.raises(PermanentExportError, match="make the file and its folder writable"):
        exporter.write(_profile())


def test_anything_but_a_bucket_profile_is_refused_permanently(jsonl_module: ModuleType) -> None:
    exporter = jsonl_module.JsonlExporter("unused.jsonl")

    with pytest.raises(PermanentExportError, match="got DatasetProfileView"):
        exporter.write(_profile().view)


def test_a_bad_option_fails_at_configure(jsonl_module: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(profiletel.ConfigurationError,
                       match="the jsonl option fsync must be true or false, got 'sometimes'"):
        profiletel.configure(exporters=["jsonl"], dead_letter_dir=tmp_path,
                             exporter_options={"jsonl": {"fsync": "sometimes"}})


# The example installed for real

_APP = textwrap.dedent("""
    import json, sys
    from importlib import metadata
    from pathlib import Path

    import profiletel

    out = Path(sys.argv[1])
    provider = profiletel.configure(
        exporters=["local", "jsonl"],
        local_dir=out / "profiles",
        write_schedule=None,
        exporter_options={"jsonl": {"path": str(out / "summaries.jsonl")}},
    )
    bucket = int(sys.argv[2])
    for i in range(30):
        profiletel.get_logger("orders").log(
            {"amount": float(i), "country": "NL"}, timestamp_ms=bucket + (i % 3) * 3_600_000
        )
    profiletel.get_logger("clicks").log({"page": "/"}, timestamp_ms=bucket)
    delivered = provider.shutdown(timeout_s=60)
    status = provider.status()
    jsonl = metadata.distribution("profiletel-exporter-jsonl")
    print(json.dumps({
        "delivered": delivered,
        "exported": status.profiles_exported,
        "dead_lettered": status.dead_lettered,
        "profiletel_file": profiletel.__file__,
        "jsonl_file": str(jsonl.locate_file("profiletel_exporter_jsonl/__init__.py")),
    }))
""")


def _copy_project(source: Path, target: Path, parts: tuple[str, ...]) -> Path:
    """The files pip needs to build ``source``, copied so no build output lands in the tree."""
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in parts:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, ignore=ignore)
        else:
            shutil.copy2(source / part, target / part)
    return target


def _third_party_only(target: Path) -> Path:
    """A folder of links to this environment's installed packages, leaving profiletel out,
    so the new environment finds whylogs and its kin but only the profiletel pip installs."""
    target.mkdir()
    for folder in map(Path, site.getsitepackages()):
        for entry in folder.iterdir():
            name = entry.name.lower()
            if name.startswith(("profiletel", "__editable__", "_profiletel")) or name.endswith(
                ".pth"
            ):
                continue
            if not (target / entry.name).exists():
                (target / entry.name).symlink_to(entry)
    return target


def _clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PROFILETEL_", "PYTHON", "PIP_", "VIRTUAL_ENV"))}
    # No index and no user or site pip configuration: pip may read only the given folders.
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_CACHE_DIR="1", **extra)
    return env


@pytest.mark.slow
@pytest.mark.venv
def test_example_installed_with_pip_in_a_fresh_venv_is_listed_and_gets_every_profile(
    tmp_path: Path,
) -> None:
    home = tmp_path / "venv"
    try:
        venv.EnvBuilder(with_pip=True, symlinks=os.name != "nt").create(home)
        shared = _third_party_only(tmp_path / "third-party")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"a virtual environment with pip cannot be made here: {exc}")
    bin_dir = home / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    Path(purelib, "third-party.pth").write_text(f"{shared}\n", encoding="utf-8")
    sdk = _copy_project(ROOT, tmp_path / "src" / "profiletel",
                        ("pyproject.toml", "README.md", "sdk", "exporters"))
    example = _copy_project(EXAMPLE, tmp_path / "src" / "jsonl", ("pyproject.toml", "README.md",
                                                                 "src"))
    env = _clean_env()

    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps",
         "-q", str(sdk), str(example)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    listed = subprocess.run([bin_dir / "profiletel", "plugins"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=120)
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert listed.returncode == 0, listed.stderr
    assert rows["jsonl"] == ["jsonl", "jsonl", "profiletel-exporter-jsonl", "0.1.0", "loaded"]
    assert rows["local"] == ["local", "local", "profiletel", profiletel.__version__, "loaded"]

    (tmp_path / "app.py").write_text(_APP, encoding="utf-8")
    out = tmp_path / "out"
    ran = subprocess.run([python, "app.py", str(out), str(BUCKET_10H)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.splitlines()[-1])

    assert Path(result["profiletel_file"]).is_relative_to(home)
    assert Path(result["jsonl_file"]).is_relative_to(home)
    assert (result["delivered"], result["exported"], result["dead_lettered"]) == (True, 8, 0)
    local = {(p.dataset_id, p.bucket_start_ms, p.profile_id)
             for p in read_profiles(out / "profiles")}
    lines = _lines(out / "summaries.jsonl")
    jsonl = {(line["dataset_id"], line["bucket_start_ms"], line["profile_id"]) for line in lines}
    assert jsonl == local
    assert sorted((dataset, bucket) for dataset, bucket, _ in local) == [
        ("clicks", BUCKET_10H),
        ("orders", BUCKET_10H), ("orders", BUCKET_10H + HOUR_MS),
        ("orders", BUCKET_10H + 2 * HOUR_MS),
    ]
    assert sum(line["count"] for line in lines if line["column"] == "amount") == 30
