"""The ``local`` exporter: one whylogs binary per profile under ``<base_dir>/<dataset>/``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from whylogs.api.writer import Writer
from whylogs.api.writer.writer import Writable

import profiletel
from profiletel import BucketProfile, hookimpl, safe_path_part, write_atomic

__all__ = ["LocalExporter"]


class LocalExporter(Writer):
    """Writes each profile atomically to ``<base_dir>/<dataset>/<file_name>``.

    The file name carries the dataset, the bucket start, the segment and a unique id
    (see :meth:`BucketProfile.file_name`); every part is made safe with
    :func:`profiletel.safe_path_part`, so no dataset id or segment value can write
    outside ``base_dir``.

    :param base_dir: defaults to ``PROFILETEL_LOCAL_DIR``, else ``./profiles``.
    """

    exporter_name = "local"

    def __init__(self, base_dir: str | os.PathLike[str] | None = None) -> None:
        self.base_dir = Path(base_dir if base_dir is not None else profiletel.local_dir_from_env())

    def write(
        self, file: Writable, dest: str | None = None, **kwargs: Any
    ) -> tuple[bool, str]:
        if isinstance(file, BucketProfile):
            folder = self.base_dir / safe_path_part(file.dataset_id)
            target = folder / (safe_path_part(dest) if dest else file.file_name())
            write_atomic(target, file.serialize())
            return True, str(target)
        # Any other whylogs Writable: let it write itself into base_dir.
        self.base_dir.mkdir(parents=True, exist_ok=True)
        success, written = file._write(str(self.base_dir), dest)
        return bool(success), str(written)

    def option(self, **kwargs: Any) -> LocalExporter:
        if kwargs.get("base_dir") is not None:
            self.base_dir = Path(kwargs["base_dir"])
        return self

    def __repr__(self) -> str:
        return f"LocalExporter(base_dir={str(self.base_dir)!r})"


@hookimpl
def profiletel_exporters() -> Mapping[str, Any]:
    return {"local": LocalExporter}
