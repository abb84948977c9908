"""DatasetLogger: what application code calls. It checks the input in the caller's thread
and hands it to its provider; everything slow happens on the processor's worker."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np
import pandas as pd
from whylogs.core import DatasetSchema

from ._buckets import TimedFrame
from ._processor import Dataset

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DatasetLogger", "to_timestamp_ms"]

_logger = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
# 1971-01-01 in ms: a timestamp below it was most likely given in seconds.
_SECONDS_SUSPECT_BELOW_MS: Final = 31_536_000_000
_MAX_FUTURE_MS: Final = 86_400_000
_SYNC_TIMEOUT_S: Final = 60.0


class _Sink(Protocol):
    def _emit(
        self, dataset: Dataset, timestamp_ms: int, data: Any, rows: int, sync: bool
    ) -> Sequence[Future]: ...


def to_timestamp_ms(value: Any) -> int:
    """Epoch milliseconds from an ``int``/``float`` in ms, an aware ``datetime`` (pandas
    ``Timestamp`` included), or a ``numpy.datetime64`` (read as UTC).

    :raises ValueError: for a naive ``datetime``, NaN or infinity, or a time more than
        one day ahead of now.
    :raises TypeError: for any other type.
    """
    if isinstance(value, bool):
        raise TypeError("timestamp_ms must be epoch milliseconds, not a bool")
    if isinstance(value, (int, np.integer)):
        millis = int(value)
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"timestamp_ms must be a finite number, got {value!r}")
        millis = math.floor(value)
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(
                "timestamp_ms got a naive datetime, whose time zone is unknown; pass an aware "
                "one such as datetime.now(timezone.utc), or epoch milliseconds"
            )
        if isinstance(value, pd.Timestamp):
            millis = value.value // 1_000_000
        else:
            millis = (value - _EPOCH) // timedelta(milliseconds=1)
    elif isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("timestamp_ms got NaT")
        millis = int(value.astype("datetime64[ms]").astype(np.int64))
    else:
        raise TypeError(
            "timestamp_ms must be epoch milliseconds (int), an aware datetime or None, "
            f"got {type(value).__name__}"
        )
    if millis > time.time_ns() // 1_000_000 + _MAX_FUTURE_MS:
        raise ValueError(
            f"timestamp {millis} ms is more than one day in the future; check its unit "
            "(epoch milliseconds) and the clock of the machine that produced it"
        )
    return millis


class DatasetLogger:
    """Logs rows, lists of rows or DataFrames to one dataset id.

    Get one with :func:`profiletel.get_logger` or :meth:`ProfileProvider.get_logger`.
    """

    __slots__ = ("dataset_id", "schema", "timestamp_column", "_dataset", "_sink",
                 "_warned_seconds")

    def __init__(
        self, dataset: Dataset, sink: _Sink, timestamp_column: str | None = None
    ) -> None:
        if timestamp_column is not None and not isinstance(timestamp_column, str):
            raise TypeError(
                "timestamp_column must be a column name (str), "
                f"got {type(timestamp_column).__name__}"
            )
        self.dataset_id = dataset.dataset_id
        self.schema: DatasetSchema | None = dataset.schema
        self.timestamp_column = timestamp_column
        self._dataset = dataset
        self._sink = sink
        self._warned_seconds = False

    def log(self, data: Any, timestamp_ms: Any = None, *, sync: bool = False) -> None:
        """Log ``data`` at ``timestamp_ms``.

        :param data: a row (``dict`` of column name to value), a list of rows, or a
            pandas DataFrame. Rows and frames are copied (shallowly for rows; a frame's
            column arrays, not the objects its cells point to), so the caller may reuse
            them after the call. With the logger's ``timestamp_column``, each row of a
            DataFrame goes to the bucket of its own time in that column, and
            ``timestamp_ms`` only to rows whose time is missing or unreadable.
        :param timestamp_ms: the event time: epoch milliseconds (``0`` is 1970-01-01,
            not "now"), an aware ``datetime``, or ``None`` for now.
        :param sync: return only once the data is tracked, and re-raise any error.
        :raises TypeError: if ``data`` is none of the accepted types.
        :raises ValueError: for a naive ``datetime`` or an impossible timestamp.
        :raises ProviderShutdownError: after the provider shut down.
        """
        if timestamp_ms is None:
            millis = time.time_ns() // 1_000_000
        else:
            millis = to_timestamp_ms(timestamp_ms)
            if 0 < millis < _SECONDS_SUSPECT_BELOW_MS and not self._warned_seconds:
                self._warned_seconds = True
                _logger.warning(
                    "Dataset %s got timestamp %d, which is in 1970 when read as milliseconds; "
                    "if it is in seconds, multiply it by 1000. This warning shows once per "
                    "logger.",
                    self.dataset_id, millis,
                )

        if type(data) is dict:
            payload: Any = dict(data)
            rows = 1
        elif isinstance(data, pd.DataFrame):
            if data.empty:
                return
            payload = data.copy(deep=True)
            rows = len(payload)
            if self.timestamp_column is not None:
                if self.timestamp_column not in data.columns:
                    raise ValueError(
                        f"the DataFrame has no timestamp column {self.timestamp_column!r}; "
                        f"its columns are: {', '.join(map(str, data.columns))}"
                    )
                payload = TimedFrame(payload, self.timestamp_column)
        elif isinstance(data, list):
            payload = [_row(item, index) for index, item in enumerate(data)]
            rows = len(payload)
            if not rows:
                return
        elif isinstance(data, Mapping):
            payload = dict(data)
            rows = 1
        else:
            raise TypeError(
                "log() takes a row (dict of column name to value), a list of rows or a pandas "
                f"DataFrame, got {type(data).__name__}"
            )

        futures = self._sink._emit(self._dataset, millis, payload, rows, sync)
        for future in futures:
            future.result(timeout=_SYNC_TIMEOUT_S)

    def flush(self, timeout_s: float = 30) -> bool:
        """Write the profiles of every dataset of this logger's provider now."""
        flush = getattr(self._sink, "force_flush", None)
        return bool(flush(timeout_s)) if flush is not None else False

    def __repr__(self) -> str:
        return f"DatasetLogger({self.dataset_id!r})"


def _row(item: Any, index: int) -> dict[Any, Any]:
    if type(item) is dict:
        return dict(item)
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(
        f"log() got a list whose item {index} is a {type(item).__name__}, not a row "
        "(dict of column name to value)"
    )
