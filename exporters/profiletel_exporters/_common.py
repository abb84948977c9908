"""What the network exporters share: turning a whylogs Writable into a
:class:`~profiletel.BucketProfile`, reading ``Retry-After``, and classifying HTTP statuses
into the transient and permanent failures the retry middleware acts on."""

from __future__ import annotations

import email.utils
import math
import time
from datetime import timezone
from typing import Any, Final

from whylogs.core import DatasetProfileView

from profiletel import (
    BucketProfile,
    ConfigurationError,
    PermanentExportError,
    TransientExportError,
)

__all__ = [
    "MAX_RETRY_AFTER_S",
    "as_bucket_profile",
    "is_transient_status",
    "parse_retry_after",
    "positive_seconds",
    "scrub",
    "status_error",
]

# A Retry-After beyond this is read as this: a typo on the server side must not hold a
# profile in memory for days; past the cap the normal attempt limit applies.
MAX_RETRY_AFTER_S: Final = 3600.0

REDACTED: Final = "***"


def as_bucket_profile(file: Any, exporter: str) -> BucketProfile:
    """``file`` as a :class:`BucketProfile`.

    A ``BucketProfile`` is returned as is. A whylogs ``DatasetProfileView``, or anything
    with a ``view()`` method returning one (``DatasetProfile``, a non-segmented
    ``ResultSet``), is copied into a new ``BucketProfile`` whose dataset id is the one in
    its metadata, else ``"unknown"``, and whose bucket is its dataset timestamp.

    :raises PermanentExportError: for anything else, since no retry can change its type.
    """
    if isinstance(file, BucketProfile):
        return file
    view = file
    if not isinstance(view, DatasetProfileView) and callable(getattr(view, "view", None)):
        view = view.view()
    if isinstance(view, DatasetProfileView):
        # A copy, so that the caller's view keeps its metadata untouched.
        return BucketProfile.from_bytes(view.serialize())
    raise PermanentExportError(
        f"the {exporter} exporter cannot upload a {type(file).__name__}; give it a "
        "profiletel BucketProfile, a whylogs DatasetProfile or DatasetProfileView, or a "
        "non-segmented ResultSet"
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date.

    :returns: ``None`` for a missing or unreadable value; otherwise a value between 0 and
        :data:`MAX_RETRY_AFTER_S`.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def is_transient_status(status: int) -> bool:
    """408, 429 and every 5xx may succeed later; every other non-2xx status will not."""
    return status in (408, 429) or 500 <= status <= 599


def status_error(
    message: str, status: int, hint: str, retry_after: str | None = None
) -> TransientExportError | PermanentExportError:
    """The exception for a non-2xx answer: transient or permanent by its status.

    :param message: what was refused, naming the exporter and the status.
    :param hint: what the reader should fix; used only for a permanent failure.
    """
    if is_transient_status(status):
        return TransientExportError(message, retry_after_s=parse_retry_after(retry_after))
    return PermanentExportError(f"{message}; {hint}")


def scrub(text: str, secrets: tuple[str | None, ...]) -> str:
    """``text`` with every non-empty secret in ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def positive_seconds(exporter: str, name: str, value: float | str) -> float:
    """``value`` (a number or its text, as the command line gives it) as seconds > 0.

    :raises ConfigurationError: naming the exporter and the option.
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0 or not math.isfinite(seconds):
        raise ConfigurationError(
            f"the {exporter} option {name} must be a number of seconds > 0, got {value!r}"
        )
    return seconds
