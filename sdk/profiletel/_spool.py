"""The spool: profiles waiting for a retry, kept on disk instead of in memory.

A profile that an exporter failed to take waits for the next write. With a destination
down for hours, those profiles would pile up in memory; beyond a few per exporter they
are written here, as whylogs binaries, and read back for each retry. The folder sits
beside the dead-letter directory (``<parent>/.spool/<exporter>-<pid>/``), one per
process and exporter, and is removed once empty.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any, Final

from ._profile import BucketProfile, safe_path_part

__all__ = ["SPOOL_DIRNAME", "Spool", "SpooledProfile"]

_logger = logging.getLogger(__name__)

SPOOL_DIRNAME: Final = ".spool"


class Spool:
    """Serialized profiles of one exporter, one file each.

    :param dead_letter_dir: the dead-letter directory; the spool is its sibling.
    :param exporter: the exporter's name, part of the folder name.
    """

    def __init__(self, dead_letter_dir: str | os.PathLike[str], exporter: str) -> None:
        self._root = Path(dead_letter_dir).parent / SPOOL_DIRNAME
        self._exporter = safe_path_part(exporter)
        self._pid = -1
        self._folder: Path | None = None

    @property
    def folder(self) -> Path:
        # A forked child gets a folder of its own: the parent's files are the parent's.
        if self._folder is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._folder = self._root / f"{self._exporter}-{self._pid}"
        return self._folder

    def put(self, profile: BucketProfile) -> SpooledProfile:
        """Write ``profile``; returns what to find it by.

        :raises OSError: if the folder cannot be written.
        """
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{profile.profile_id}-{uuid.uuid4().hex[:8]}.bin"
        # No fsync: the spool spares memory; a crash loses what memory would have lost.
        temporary = path.with_suffix(".part")
        temporary.write_bytes(profile.serialize())
        os.replace(temporary, path)
        return SpooledProfile(path, profile)

    def remove(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            _logger.warning(
                "Could not remove the spooled profile %s (%s); delete it by hand, it was "
                "already delivered or dead-lettered.",
                path,
                exc,
            )

    def close(self) -> None:
        """Remove the folder if nothing is left in it."""
        folder = self._folder
        if folder is None or self._pid != os.getpid():
            return
        try:
            folder.rmdir()
            folder.parent.rmdir()
        except OSError:
            pass  # not empty, or never created: both fine


class SpooledProfile:
    """A profile waiting in the spool: what names and routes it, and its file. Enough to
    dead-letter it without reading it back into whylogs objects."""

    __slots__ = ("path", "dataset_id", "bucket_start", "profile_id", "_file_name", "_describe")

    def __init__(self, path: Path, profile: BucketProfile) -> None:
        self.path = path
        self.dataset_id = profile.dataset_id
        self.bucket_start = profile.bucket_start
        self.profile_id = profile.profile_id
        self._file_name = profile.file_name()
        self._describe = profile.describe()

    def load(self) -> BucketProfile:
        """The profile, read back.

        :raises OSError: if its file cannot be read.
        """
        return BucketProfile.from_bytes(self.path.read_bytes(), dataset_id=self.dataset_id)

    # What DeadLetterStore.put reads of a profile.

    def serialize(self) -> bytes:
        return self.path.read_bytes()

    def file_name(self) -> str:
        return self._file_name

    def describe(self) -> dict[str, Any]:
        return dict(self._describe)
