"""The unit an exporter receives: one finished profile of one dataset, bucket and segment."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import quote, unquote

from whylogs.api.writer.writer import Writable
from whylogs.core import DatasetProfileView

from ._time import iso_utc

__all__ = ["BucketProfile", "safe_path_part", "unsafe_path_part"]

METADATA_DATASET_ID: Final = "profiletel.dataset_id"
METADATA_SEGMENT: Final = "profiletel.segment"
METADATA_PROFILE_ID: Final = "profiletel.profile_id"

_MAX_PART_LEN: Final = 120
# With a dataset part of at most 120, a name stays under the usual 255-byte limit.
_MAX_SEGMENT_LEN: Final = 80
_WINDOWS_RESERVED: Final = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$", re.I)

Segment = tuple[tuple[str, str], ...]


def safe_path_part(text: str) -> str:
    """Turn any string into one file-name or object-key part that cannot leave its folder.

    Percent-encoding keeps letters, digits, ``-``, ``_`` and ``.`` and encodes the rest
    (``/``, spaces, NUL, non-ASCII), so the original stays recoverable with
    :func:`unsafe_path_part`. A leading or trailing dot (Windows drops a trailing one)
    and Windows device names are encoded too; a very long part is cut and ends in a
    hash of the whole.
    """
    encoded = quote(text, safe="-_")
    encoded = encoded.replace(".", "%2E") if encoded.strip(".") == "" else encoded
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if encoded.endswith("."):
        encoded = encoded[:-1] + "%2E"
    if _WINDOWS_RESERVED.match(encoded):
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    if not encoded:
        encoded = "%00"
    if len(encoded) > _MAX_PART_LEN:
        digest = uuid.uuid5(uuid.NAMESPACE_URL, text).hex[:16]
        encoded = f"{encoded[: _MAX_PART_LEN - 17]}~{digest}"
    return encoded


def unsafe_path_part(part: str) -> str:
    """Invert :func:`safe_path_part` (parts cut for length stay cut)."""
    return unquote(part)


class BucketProfile(Writable):
    """A finished profile, with what an exporter needs to name and route it.

    :param dataset_id: the dataset the rows were logged to.
    :param bucket_start_ms: the bucket's start, which is also the profile's dataset
        timestamp, in epoch milliseconds (UTC).
    :param view: the whylogs profile view.
    :param segment: ``((column, value), ...)`` for a segmented profile, else empty.
    :param profile_id: unique per profile; retries of the same profile reuse it, so an
        exporter can overwrite its own earlier attempt instead of duplicating it.
    """

    def __init__(
        self,
        dataset_id: str,
        bucket_start_ms: int,
        view: DatasetProfileView,
        segment: Segment = (),
        profile_id: str | None = None,
    ) -> None:
        self.dataset_id = dataset_id
        self.bucket_start_ms = bucket_start_ms
        self.view = view
        self.segment = tuple(segment)
        self.profile_id = profile_id or uuid.uuid4().hex
        view.metadata[METADATA_DATASET_ID] = dataset_id
        view.metadata[METADATA_PROFILE_ID] = self.profile_id
        if self.segment:
            view.metadata[METADATA_SEGMENT] = json.dumps([list(kv) for kv in self.segment])

    @property
    def bucket_start(self) -> datetime:
        return datetime.fromtimestamp(self.bucket_start_ms / 1000, tz=timezone.utc)

    @property
    def row_count(self) -> int:
        """Rows tracked in this profile (the largest ``counts/n`` over its columns)."""
        counts = [
            column.get_metric("counts").n.value
            for column in self.view.get_columns().values()
            if column is not None and column.get_metric("counts") is not None
        ]
        return max(counts, default=0)

    def serialize(self) -> bytes:
        return self.view.serialize()

    def file_name(self) -> str:
        """``<dataset>.<bucket>[.<column>=<value>...].<id>.bin``: readable and unique."""
        bucket = datetime.fromtimestamp(self.bucket_start_ms / 1000, tz=timezone.utc)
        parts = [safe_path_part(self.dataset_id), bucket.strftime("%Y%m%dT%H%M%SZ")]
        segment = ",".join(f"{safe_path_part(k)}={safe_path_part(v)}" for k, v in self.segment)
        if len(segment) > _MAX_SEGMENT_LEN:
            # File systems cap a name at 255 bytes; the profile's metadata keeps the rest.
            digest = uuid.uuid5(uuid.NAMESPACE_URL, segment).hex[:16]
            segment = f"{segment[: _MAX_SEGMENT_LEN - 17]}~{digest}"
        if segment:
            parts.append(segment)
        parts.append(self.profile_id[:16])
        return ".".join(parts) + ".bin"

    def describe(self) -> dict[str, Any]:
        """The identifying fields, as written beside a dead-lettered profile."""
        return {
            "dataset_id": self.dataset_id,
            "bucket_start": iso_utc(self.bucket_start_ms),
            "bucket_start_ms": self.bucket_start_ms,
            "segment": [list(kv) for kv in self.segment],
            "profile_id": self.profile_id,
        }

    @classmethod
    def from_bytes(cls, data: bytes, *, dataset_id: str | None = None) -> BucketProfile:
        """Rebuild a profile written by profiletel (for replay and for ``show``)."""
        view = DatasetProfileView.deserialize(data)
        meta = view.metadata or {}
        segment_json = meta.get(METADATA_SEGMENT)
        segment: Sequence[Sequence[str]] = json.loads(segment_json) if segment_json else ()
        timestamp = view.dataset_timestamp
        bucket_ms = int(timestamp.timestamp() * 1000) if timestamp is not None else 0
        return cls(
            dataset_id=dataset_id or meta.get(METADATA_DATASET_ID) or "unknown",
            bucket_start_ms=bucket_ms,
            view=view,
            segment=tuple((str(k), str(v)) for k, v in segment),
            profile_id=meta.get(METADATA_PROFILE_ID),
        )

    # whylogs' Writable interface, so that whylogs' own writers accept a BucketProfile.

    def _get_default_filename(self) -> str:
        return self.file_name()

    def _write(
        self, path: str | None = None, filename: str | None = None, **kwargs: Any
    ) -> tuple[bool, str]:
        directory = path if path is not None else os.getcwd()
        target = os.path.join(directory, filename or self.file_name())
        with Writable._safe_open_write(target, "b") as out:
            out.write(self.serialize())
        return True, target

    def __repr__(self) -> str:
        segment = f", segment={self.segment!r}" if self.segment else ""
        return (
            f"BucketProfile(dataset_id={self.dataset_id!r}, "
            f"bucket_start={iso_utc(self.bucket_start_ms)!r}{segment})"
        )
