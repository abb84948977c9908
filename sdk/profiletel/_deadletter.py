"""The dead-letter directory: profiles that no exporter attempt could deliver.

Each profile is a whylogs binary beside a JSON sidecar naming its dataset, bucket,
exporter and last error, under ``<dir>/<exporter>/<dataset>/``. ``profiletel replay``
sends them again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._profile import BucketProfile, safe_path_part
from ._time import iso_utc

__all__ = ["DeadLetterStore", "DeadLetter", "write_atomic"]

_logger = logging.getLogger(__name__)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a
    rename, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered profile on disk."""

    profile_path: Path
    sidecar_path: Path
    info: dict[str, Any]

    def load(self) -> BucketProfile:
        return BucketProfile.from_bytes(
            self.profile_path.read_bytes(), dataset_id=self.info.get("dataset_id")
        )

    def remove(self) -> None:
        self.profile_path.unlink(missing_ok=True)
        self.sidecar_path.unlink(missing_ok=True)


class DeadLetterStore:
    """Writes and lists dead letters under one directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def put(
        self, profile: BucketProfile, exporter: str, attempts: int, last_error: str
    ) -> Path:
        """Store ``profile`` and its sidecar. Returns the profile's path.

        :raises OSError: if the directory cannot be written.
        """
        folder = self.directory / safe_path_part(exporter) / safe_path_part(profile.dataset_id)
        profile_path = folder / profile.file_name()
        sidecar = dict(profile.describe())
        sidecar.update(
            exporter=exporter,
            attempts=attempts,
            last_error=last_error,
            dead_lettered_at=iso_utc(time.time_ns() // 1_000_000),
        )
        write_atomic(profile_path, profile.serialize())
        write_atomic(
            profile_path.with_suffix(".json"),
            json.dumps(sidecar, indent=2, sort_keys=True).encode(),
        )
        return profile_path

    def __iter__(self) -> Iterator[DeadLetter]:
        if not self.directory.is_dir():
            return
        for profile_path in sorted(self.directory.rglob("*.bin")):
            sidecar_path = profile_path.with_suffix(".json")
            try:
                info = json.loads(sidecar_path.read_text())
            except (OSError, ValueError):
                info = {}
            yield DeadLetter(profile_path, sidecar_path, info)

    def __len__(self) -> int:
        return sum(1 for _ in self)
