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

from . import _config
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
    """Epoch milliseconds from an ``int``/``float`` in ms (a float is floored), an aware
    ``datetime`` (pandas ``Timestamp`` included), or a ``numpy.datetime64`` (read as UTC).

    :raises ValueError: for a naive ``datetime``, NaT, NaN or infinity, a time before
        1970-01-01, or a time more than one day ahead of now.
    :raises TypeError: for any other type.
    """
    if value is pd.NaT:
        raise ValueError("timestamp_ms got NaT (pandas' missing time); pass a time, or None")
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
    if millis < 0:
        # Before the epoch: buckets and file names are not defined for it on every
        # platform (Windows has no negative timestamps).
        raise ValueError(
            f"timestamp {millis} ms is before 1970-01-01; profiletel takes event times from "
            "the epoch on, in epoch milliseconds"
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

    __slots__ = (
        "dataset_id", "schema", "timestamp_column", "_dataset", "_sink", "_warned_seconds",
        "_max_columns",
    )

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
        self._max_columns = _config.max_columns_from_env()

    def log(self, data: Any, timestamp_ms: Any = None, *, sync: bool = False) -> None:
        """Log ``data`` at ``timestamp_ms``.

        :param data: a row (``dict`` of column name to value), a list of rows, or a
            pandas DataFrame. Rows and frames are copied (shallowly for rows; a frame's
            column arrays, not the objects its cells point to), so the caller may reuse
            them after the call. An empty row, list or frame logs nothing. Column names that
            are not strings are converted with ``str()``; a frame's MultiIndex columns
            become their levels joined by ``.``. With the logger's ``timestamp_column``,
            each row of a DataFrame goes to the bucket of its own time in that column,
            and ``timestamp_ms`` only to rows whose time is missing or unreadable.
        :param timestamp_ms: the event time: epoch milliseconds (``0`` is 1970-01-01,
            not "now"), an aware ``datetime``, or ``None`` for now.
        :param sync: return only once the data is tracked, and re-raise any error.
        :raises TypeError: if ``data`` is none of the accepted types.
        :raises ValueError: for a naive ``datetime`` or an impossible timestamp, a row
            or frame with more than ``PROFILETEL_MAX_COLUMNS`` columns, or a frame whose
            column names repeat.
        :raises ProviderShutdownError: after the provider shut down.
        """
        if timestamp_ms is None:
            millis = time.time_ns() // 1_000_000
        else:
            millis = to_timestamp_ms(timestamp_ms)
            if millis < _SECONDS_SUSPECT_BELOW_MS and not self._warned_seconds:
                self._warned_seconds = True
                _logger.warning(
                    "Dataset %s got timestamp %d, which is before 1971 when read as epoch "
                    "milliseconds; if it is in seconds, multiply it by 1000. This warning "
                    "shows once per logger.",
                    self.dataset_id, millis,
                )

        max_columns = self._max_columns
        if type(data) is dict:
            if len(data) > max_columns:
                raise _too_wide(len(data), max_columns)
            if not data:
                return
            payload: Any = dict(data)
            rows = 1
        elif isinstance(data, pd.DataFrame):
            if data.empty:
                return
            payload = _frame_copy(data, max_columns)
            rows = len(payload)
            if self.timestamp_column is not None:
                if self.timestamp_column not in data.columns:
                    raise ValueError(
                        f"the DataFrame has no timestamp column {self.timestamp_column!r}; "
                        f"its columns are: {', '.join(map(str, data.columns))}"
                    )
                payload = TimedFrame(payload, self.timestamp_column)
        elif isinstance(data, list):
            payload = [_row(item, index, max_columns) for index, item in enumerate(data) if item]
            rows = len(payload)
            if not rows:
                return
        elif isinstance(data, Mapping):
            if not data:
                return
            payload = _row(data, 0, max_columns)
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


def _row(item: Any, index: int, max_columns: int) -> dict[Any, Any]:
    if type(item) is not dict and not isinstance(item, Mapping):
        raise TypeError(
            f"log() got a list whose item {index} is a {type(item).__name__}, not a row "
            "(dict of column name to value)"
        )
    if len(item) > max_columns:
        raise _too_wide(len(item), max_columns)
    return dict(item)


def _too_wide(columns: int, max_columns: int) -> ValueError:
    return ValueError(
        f"log() got {columns} columns, more than the limit of {max_columns}: whylogs spends "
        f"about a millisecond per column per batch. Set {_config.PROFILETEL_MAX_COLUMNS} to "
        "raise the limit, or log fewer columns"
    )


def _frame_copy(frame: pd.DataFrame, max_columns: int) -> pd.DataFrame:
    """A deep copy of ``frame`` whose column names are unique strings."""
    columns = frame.columns
    if len(columns) > max_columns:
        raise _too_wide(len(columns), max_columns)
    names: list[str] | None = None
    if isinstance(columns, pd.MultiIndex):
        names = [".".join(str(level) for level in key if str(level) != "") for key in columns]
    elif not all(type(name) is str for name in columns):
        names = [str(name) for name in columns]
    checked = names if names is not None else list(columns)
    if len(set(checked)) != len(checked):
        repeated = sorted({name for name in checked if checked.count(name) > 1})
        raise ValueError(
            f"log() got a DataFrame whose column names repeat: {repeated}; rename them so "
            "that each column has its own profile"
        )
    for name in checked:
        if not name.isascii():
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    f"log() got a DataFrame column name {name!r} that is not valid Unicode "
                    "text (lone surrogate)"
                ) from None
    copy = frame.copy(deep=True)
    if names is not None:
        copy.columns = names
    return copy
