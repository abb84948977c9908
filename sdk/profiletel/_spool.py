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
from typing import Final

from ._deadletter import write_atomic
from ._profile import BucketProfile, safe_path_part

__all__ = ["SPOOL_DIRNAME", "Spool"]

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

    def put(self, profile: BucketProfile) -> Path:
        """Write ``profile``; returns where.

        :raises OSError: if the folder cannot be written.
        """
        path = self.folder / f"{profile.profile_id}-{uuid.uuid4().hex[:8]}.bin"
        write_atomic(path, profile.serialize())
        return path

    def load(self, path: Path, dataset_id: str) -> BucketProfile:
        """Read back a profile :meth:`put` wrote.

        :raises OSError: if it cannot be read.
        """
        return BucketProfile.from_bytes(path.read_bytes(), dataset_id=dataset_id)

    def remove(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            _logger.warning(
                "Could not remove the spooled profile %s (%s); delete it by hand, it was "
                "already delivered or dead-lettered.",
                path, exc,
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
