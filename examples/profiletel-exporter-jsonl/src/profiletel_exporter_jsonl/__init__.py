"""The ``jsonl`` exporter: one JSON line per column of every profile, appended to one file.

A third-party profiletel plugin. It uses profiletel's public API only (``hookimpl``,
``BucketProfile``, ``summarize`` and the export errors) and is found through the entry
point ``jsonl`` of the ``profiletel`` group declared in this distribution's
``pyproject.toml``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from whylogs.api.writer import Writer

import profiletel
from profiletel import (
    BucketProfile,
    ColumnSummary,
    ConfigurationError,
    PermanentExportError,
    TransientExportError,
)

try:
    import fcntl
except ImportError:  # Windows: appends from one process stay whole, across processes not
    fcntl = None  # type: ignore[assignment]

__all__ = ["JsonlExporter", "profile_lines"]

EXPORTER_NAME: Final = "jsonl"
DEFAULT_PATH: Final = "profiles.jsonl"

# Failures no retry can mend: the file or its folder must be fixed first.
_PERMANENT_ERRNOS: Final = frozenset(
    {errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EROFS}
)
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def profile_lines(profile: BucketProfile) -> list[dict[str, Any]]:
    """One JSON-ready record per column of ``profile``, in column-name order.

    Each record holds the dataset id, the bucket start (ISO 8601, UTC, and epoch
    milliseconds), the segment as ``{column: value}``, the profile id (the same on every
    line of one profile, so a reader can drop the lines of a profile written twice), and
    the column's figures from :func:`profiletel.summarize`. Figures whylogs does not
    have for a column, such as the mean of a string column, are ``null``.
    """
    common = {
        "dataset_id": profile.dataset_id,
        "bucket_start": profile.bucket_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bucket_start_ms": profile.bucket_start_ms,
        "segment": dict(profile.segment),
        "profile_id": profile.profile_id,
    }
    summaries = profiletel.summarize(profile.view)
    return [{**common, **_column_record(summary)} for summary in summaries]


def _column_record(summary: ColumnSummary) -> dict[str, Any]:
    return {
        "column": summary.column,
        "count": summary.count,
        "nulls": summary.nulls,
        "nans": summary.nans,
        "types": {name: n for name, n in summary.types.items() if n},
        "inferred_type": summary.inferred_type,
        "mean": _finite(summary.mean),
        "stddev": _finite(summary.stddev),
        "min": _finite(summary.min),
        "max": _finite(summary.max),
        "distinct": _finite(summary.distinct),
    }


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity; null keeps every line loadable by strict parsers.
    return value if value is not None and math.isfinite(value) else None


def _flag(name: str, value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigurationError(
        f"the jsonl option {name} must be true or false, got {value!r}"
    )


class JsonlExporter(Writer):
    """Appends the lines of each profile (see :func:`profile_lines`) to ``path``.

    The lines of one profile are appended in one locked write, so two threads or
    processes appending to the same file never interleave their lines, and a write that
    fails half-way is cut back, so a retry does not leave a broken line behind.

    :param path: the file to append to; its folder is created. Default ``profiles.jsonl``.
    :param fsync: wait until each profile's lines are on disk before reporting success.
    :raises ConfigurationError: for a path that is not a str or path, or a bad ``fsync``.
    """

    exporter_name = EXPORTER_NAME

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, fsync: bool | str = False):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigurationError(f"the jsonl option path must be a file path, got {path!r}")
        self.path = Path(path)
        self.fsync = _flag("fsync", fsync)
        self._lock = threading.Lock()

    def write(self, file: Any, dest: str | None = None, **kwargs: Any) -> tuple[bool, str]:
        """Append the lines of ``file``, a :class:`profiletel.BucketProfile`.

        ``dest`` is ignored: every profile goes to ``path``.

        :returns: ``(True, path)``.
        :raises PermanentExportError: for anything but a ``BucketProfile``, and when the
            file cannot be written without a fix (permissions, a folder in its place).
        :raises TransientExportError: for other I/O failures, such as a full disk.
        """
        if not isinstance(file, BucketProfile):
            raise PermanentExportError(
                f"the jsonl exporter writes profiletel BucketProfile objects, got "
                f"{type(file).__name__}"
            )
        payload = "".join(
            json.dumps(record, allow_nan=False, ensure_ascii=False) + "\n"
            for record in profile_lines(file)
        ).encode("utf-8")
        try:
            with self._lock:
                self._append(payload)
        except OSError as exc:
            message = f"jsonl: appending to {self.path} failed ({exc})"
            if exc.errno in _PERMANENT_ERRNOS:
                raise PermanentExportError(
                    f"{message}; make the file and its folder writable, or set the path option"
                ) from exc
            raise TransientExportError(message) from exc
        return True, str(self.path)

    def _append(self, payload: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            start = os.fstat(fd).st_size
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)  # closing releases the lock

    def option(self, **kwargs: Any) -> JsonlExporter:
        if kwargs.get("path") is not None:
            self.path = Path(kwargs["path"])
        if kwargs.get("fsync") is not None:
            self.fsync = _flag("fsync", kwargs["fsync"])
        return self

    def __repr__(self) -> str:
        return f"JsonlExporter(path={str(self.path)!r}, fsync={self.fsync})"


@profiletel.hookimpl
def profiletel_exporters() -> Mapping[str, Any]:
    return {EXPORTER_NAME: JsonlExporter}
