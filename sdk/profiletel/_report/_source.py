"""Where the report's profiles come from: a local file or folder, or an ``s3://`` prefix."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from .._plugins import create_exporter
from .._read import iter_profile_files
from ._sketches import SketchProfile, read_sketch_profile

__all__ = ["read_source"]

_logger = logging.getLogger(__name__)

S3_SCHEME = "s3://"


def read_source(
    path: str, *, dataset: str | None = None, s3_options: Mapping[str, Any] | None = None
) -> list[SketchProfile]:
    """Read every profile under ``path``, keeping those of ``dataset`` when given.

    ``path`` is a profile file, a folder of them (see :func:`profiletel.iter_profile_files`),
    or ``s3://bucket/prefix``, read through the ``s3`` exporter built with ``s3_options``
    (``endpoint_url``, ``region``, timeouts). A file that is not a profile is skipped
    with a warning.

    :raises FileNotFoundError: when a local ``path`` does not exist.
    :raises ConfigurationError: when the s3 exporter cannot be built.
    """
    profiles = []
    for name, data in _iter_bytes(path, s3_options or {}):
        try:
            profile = read_sketch_profile(data)
        except Exception as exc:
            _logger.warning("Skipping %s, which is not a readable profile (%s); move it out "
                            "of the folder to silence this.", name, exc)
            continue
        if dataset is None or profile.dataset_id == dataset:
            profiles.append(profile)
    return profiles


def _iter_bytes(path: str, s3_options: Mapping[str, Any]) -> Iterator[tuple[str, bytes]]:
    if not path.startswith(S3_SCHEME):
        for file in iter_profile_files(path):
            yield str(file), file.read_bytes()
        return
    bucket, _, prefix = path[len(S3_SCHEME):].partition("/")
    exporter = create_exporter("s3", bucket=bucket, prefix=prefix, **s3_options)
    reader = getattr(exporter, "iter_objects", None)
    if not callable(reader):
        raise TypeError("the installed s3 exporter cannot list objects; upgrade profiletel")
    yield from reader()
