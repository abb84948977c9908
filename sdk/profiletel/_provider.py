"""ProfileProvider, the global provider, and configure()."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from whylogs.api.writer import Writer
from whylogs.core import DatasetSchema

from . import _config
from ._errors import ConfigurationError, ProviderShutdownError
from ._logger import DatasetLogger
from ._plugins import create_exporter, exporter_names
from ._processor import BatchProfileProcessor, Dataset, ProcessorStatus
from ._segments import check_segments
from ._time import Schedule, TimeGranularity

__all__ = [
    "ProfileProvider",
    "ProviderStatus",
    "configure",
    "get_logger",
    "get_provider",
    "set_provider",
]

_logger = logging.getLogger(__name__)

# Rows logged before any provider is installed wait here, up to this many.
PRE_CONFIGURE_BUFFER_ROWS: Final = 10_000


@dataclass(frozen=True)
class ProviderStatus:
    """A snapshot of a provider: one :class:`ProcessorStatus` per processor, and totals."""

    running: bool
    processors: tuple[ProcessorStatus, ...]
    #: rows logged before this provider was installed that did not fit the waiting buffer
    rows_overflowed: int = 0

    @property
    def pending_exports(self) -> int:
        return sum(p.pending_exports for p in self.processors)

    @property
    def dead_lettered(self) -> int:
        return sum(p.dead_lettered for p in self.processors)

    @property
    def profiles_exported(self) -> int:
        return sum(p.profiles_exported for p in self.processors)

    @property
    def rows_dropped(self) -> int:
        return sum(p.rows_dropped for p in self.processors) + self.rows_overflowed

    @property
    def rows_rejected(self) -> int:
        return sum(p.rows_rejected for p in self.processors)

    @property
    def buckets(self) -> int:
        return sum(p.buckets for p in self.processors)


class _Datasets:
    """One :class:`Dataset` per id, so every logger of an id feeds the same profiles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Dataset] = {}

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()

    def get(self, dataset_id: str, schema: DatasetSchema | None) -> Dataset:
        if not isinstance(dataset_id, str):
            raise TypeError(f"dataset_id must be a str, got {type(dataset_id).__name__}")
        if not dataset_id:
            raise ValueError("dataset_id must not be empty")
        if not dataset_id.isascii():
            try:
                dataset_id.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate cannot be serialized into a profile nor named on disk.
                raise ValueError(
                    f"dataset_id {dataset_id!r} is not valid Unicode text (lone surrogate)"
                ) from None
        if schema is not None and not isinstance(schema, DatasetSchema):
            raise TypeError(f"schema must be a whylogs DatasetSchema, got {type(schema).__name__}")
        if schema is not None and schema.segments:
            check_segments(schema)
        with self._lock:
            dataset = self._by_id.get(dataset_id)
            if dataset is None:
                dataset = self._by_id[dataset_id] = Dataset(dataset_id, schema)
            elif schema is not None and dataset.schema is not schema:
                raise ValueError(
                    f"dataset {dataset_id!r} already has a logger with another schema; "
                    "get every logger of one dataset with the same DatasetSchema object"
                )
            return dataset


_live_providers: weakref.WeakSet[ProfileProvider] = weakref.WeakSet()


class _MainThreadShutdowns:
    """Counts the provider shutdowns running in the main thread, where Python runs
    signal handlers. A handler that interrupts one must not flush on top of it (the
    interrupted code may hold a lock the flush needs): it leaves ``after`` to run once
    the shutdown is over (see :mod:`profiletel._lifecycle`)."""

    def __init__(self) -> None:
        self.depth = 0
        self.after: Callable[[], None] | None = None

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0 and self.after is not None:
                after, self.after = self.after, None
                after()


main_thread_shutdowns = _MainThreadShutdowns()


class ProfileProvider:
    """Hands out loggers and feeds their rows to its processors.

    :param processors: usually one :class:`BatchProfileProcessor`; each receives every row.
    """

    def __init__(self, processors: Sequence[BatchProfileProcessor] = ()) -> None:
        self._processors = tuple(processors)
        if not self._processors:
            raise ValueError("a ProfileProvider needs at least one processor")
        self._datasets = _Datasets()
        self._shutdown = False
        self._overflowed_before_install = 0
        _live_providers.add(self)

    @property
    def processors(self) -> tuple[BatchProfileProcessor, ...]:
        return self._processors

    def get_logger(
        self,
        dataset_id: str,
        *,
        schema: DatasetSchema | None = None,
        timestamp_column: str | None = None,
    ) -> DatasetLogger:
        """A logger bound to this provider for ``dataset_id``.

        :param schema: a whylogs ``DatasetSchema``; one with segments makes the
            dataset's profiles segmented.
        :param timestamp_column: the column of logged DataFrames holding each row's
            event time; the worker splits such a frame into the buckets of its rows.
        :raises ValueError: for an empty id, a second, different schema for one id, or
            segments profiletel cannot make (see :func:`check_segments`).
        """
        return DatasetLogger(self._datasets.get(dataset_id, schema), self, timestamp_column)

    def _emit(
        self, dataset: Dataset, timestamp_ms: int, data: Any, rows: int, sync: bool
    ) -> Sequence[Future]:
        if self._shutdown:
            raise ProviderShutdownError(
                f"cannot log to dataset {dataset.dataset_id!r}: the provider has shut down"
            )
        if not sync:
            for processor in self._processors:
                processor.submit(dataset, timestamp_ms, data, rows, None)
            return ()
        futures: list[Future] = []
        for processor in self._processors:
            future: Future = Future()
            processor.submit(dataset, timestamp_ms, data, rows, future)
            futures.append(future)
        return futures

    def force_flush(self, timeout_s: float = 30) -> bool:
        """Write every bucket now and wait for the exporters, within ``timeout_s`` in all.

        :returns: ``True`` if every profile was delivered in time.
        """
        deadline = time.monotonic() + timeout_s
        results = [
            processor.force_flush(max(0.0, deadline - time.monotonic()))
            for processor in self._processors
        ]
        return all(results)

    def shutdown(self, timeout_s: float = 30) -> bool:
        """Flush, retry, dead-letter what could not be delivered, and stop. Returns
        within ``timeout_s`` even if an exporter hangs. Safe to call twice.

        :returns: ``True`` if every profile was delivered in time.
        """
        if self._shutdown:
            _logger.warning("shutdown() was called twice on a provider; the second does nothing.")
            return False
        deadline = time.monotonic() + timeout_s
        # Tracked from before the flag is set, so that a signal handler never finds this
        # provider shut down while its shutdown has yet to run.
        with main_thread_shutdowns.track():
            self._shutdown = True
            results = [
                processor.shutdown(max(0.0, deadline - time.monotonic()))
                for processor in self._processors
            ]
        return all(results)

    @property
    def is_shut_down(self) -> bool:
        return self._shutdown

    def status(self) -> ProviderStatus:
        return ProviderStatus(
            running=not self._shutdown,
            processors=tuple(processor.status() for processor in self._processors),
            rows_overflowed=self._overflowed_before_install,
        )


class _GlobalSink:
    """What global loggers talk to: the installed provider, or a bounded buffer until
    there is one."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.provider: ProfileProvider | None = None
        self.datasets = _Datasets()
        self._buffer: list[tuple[Dataset, int, Any, int]] = []
        self.buffered_rows = 0
        self.overflowed_rows = 0

    def _emit(
        self, dataset: Dataset, timestamp_ms: int, data: Any, rows: int, sync: bool
    ) -> Sequence[Future]:
        provider = self.provider
        if provider is not None:
            return provider._emit(dataset, timestamp_ms, data, rows, sync)
        with self.lock:
            if self.provider is not None:
                return self.provider._emit(dataset, timestamp_ms, data, rows, sync)
            if sync:
                raise ConfigurationError(
                    "log(sync=True) needs an installed provider; call profiletel.configure() first"
                )
            if self.buffered_rows + rows > PRE_CONFIGURE_BUFFER_ROWS:
                if not self.overflowed_rows:
                    _logger.warning(
                        "No profiletel provider is configured and %d rows are already waiting "
                        "for one; further rows are dropped and counted until configure() runs.",
                        PRE_CONFIGURE_BUFFER_ROWS,
                    )
                self.overflowed_rows += rows
                return ()
            self._buffer.append((dataset, timestamp_ms, data, rows))
            self.buffered_rows += rows
            return ()

    def install(self, provider: ProfileProvider | None) -> ProfileProvider | None:
        with self.lock:
            previous, self.provider = self.provider, provider
            if provider is None:
                return previous
            buffered, self._buffer = self._buffer, []
            self.buffered_rows = 0
            overflowed, self.overflowed_rows = self.overflowed_rows, 0
            provider._overflowed_before_install += overflowed
            for dataset, timestamp_ms, data, rows in buffered:
                provider._emit(dataset, timestamp_ms, data, rows, False)
        if overflowed:
            _logger.warning(
                "%d row(s) logged before configure() did not fit the waiting buffer and "
                "were dropped; configure profiletel earlier at start-up.",
                overflowed,
            )
        return previous

    def force_flush(self, timeout_s: float = 30) -> bool:
        provider = self.provider
        return provider.force_flush(timeout_s) if provider is not None else False

    def reset_after_fork(self) -> None:
        """In a forked child: new locks, and no rows waiting for a provider (the parent
        still holds them, and hands them to its own provider)."""
        self.lock = threading.RLock()
        self._buffer = []
        self.buffered_rows = 0
        self.overflowed_rows = 0
        self.datasets.reset_after_fork()


_global = _GlobalSink()


def get_logger(
    dataset_id: str,
    *,
    schema: DatasetSchema | None = None,
    timestamp_column: str | None = None,
) -> DatasetLogger:
    """A logger for ``dataset_id`` that follows the global provider.

    It works before :func:`configure`: rows wait in a bounded buffer
    (``PRE_CONFIGURE_BUFFER_ROWS``) and go to the provider once one is installed.

    :param timestamp_column: see :meth:`ProfileProvider.get_logger`.
    """
    return DatasetLogger(_global.datasets.get(dataset_id, schema), _global, timestamp_column)


def get_provider() -> ProfileProvider | None:
    """The installed global provider, or ``None``."""
    return _global.provider


def set_provider(provider: ProfileProvider) -> None:
    """Install ``provider`` globally and hand it any rows logged before.

    The previous provider, if any, is left running: :func:`configure` is the call that
    also shuts it down.
    """
    if not isinstance(provider, ProfileProvider):
        raise TypeError(f"set_provider() takes a ProfileProvider, got {type(provider).__name__}")
    _global.install(provider)


_UNSET: Any = _config.UNSET


def configure(
    *,
    exporters: Sequence[str | Writer] | None = None,
    aggregate_by: TimeGranularity | str | None = None,
    write_schedule: Schedule | str | None = _UNSET,
    local_dir: str | os.PathLike[str] | None = None,
    dead_letter_dir: str | os.PathLike[str] | None = None,
    exporter_options: Mapping[str, Mapping[str, Any]] | None = None,
    shutdown_timeout_s: float = 30,
    **processor_options: Any,
) -> ProfileProvider:
    """Build a provider with one :class:`BatchProfileProcessor` and install it globally.

    Arguments not given come from the environment (``PROFILETEL_EXPORTERS``,
    ``PROFILETEL_AGGREGATE_BY``, ``PROFILETEL_WRITE_EVERY``, ``PROFILETEL_LOCAL_DIR``,
    ``PROFILETEL_DEAD_LETTER_DIR``), then from the defaults; exporter options not given
    in ``exporter_options`` come from the exporter's variables (``PROFILETEL_S3_*``,
    ``WHYLABS_*``). ``profiletel config`` prints the result. A provider installed
    before is shut down afterwards (flushing it), and loggers already handed out by
    :func:`get_logger` follow the new one.

    :param exporters: exporter names, whylogs ``Writer`` instances, or a mix.
    :param write_schedule: a :class:`Schedule`, its text form (``"10m"``), or ``None``
        to write only on flush and shutdown.
    :param exporter_options: options per exporter name, passed to its factory.
    :param processor_options: further :class:`BatchProfileProcessor` keyword options.
    :raises ConfigurationError: for an unknown exporter or an invalid value.
    """
    if exporter_options is not None and not isinstance(exporter_options, Mapping):
        raise ConfigurationError(
            "exporter_options takes {exporter name: {option: value}}, got "
            f"{type(exporter_options).__name__}"
        )
    if isinstance(exporters, (str, Writer)):
        raise ConfigurationError(
            f"exporters takes a list of exporter names or Writer instances, got {exporters!r}; "
            f"write exporters=[{exporters!r}]"
        )
    options = {name: dict(values) for name, values in (exporter_options or {}).items()}
    if local_dir is not None:
        options.setdefault("local", {}).setdefault("base_dir", os.fspath(local_dir))
    resolved = _config.resolve(
        exporters=exporters,
        aggregate_by=aggregate_by,
        write_schedule=write_schedule,
        local_dir=local_dir,
        dead_letter_dir=dead_letter_dir,
    )

    built: list[Writer] = []
    for entry in resolved["exporters"]:
        if isinstance(entry, str):
            built.append(_create_named(entry, options, resolved.settings["exporters"].source))
        elif isinstance(entry, Writer):
            built.append(entry)
        else:
            raise ConfigurationError(
                f"exporters takes exporter names or whylogs Writer instances, got {entry!r}"
            )

    if not built:
        raise ConfigurationError(
            "exporters is empty, so every profile would be thrown away; name at least one "
            "exporter (for example exporters=['local'])"
        )
    try:
        processor = BatchProfileProcessor(
            built,
            aggregate_by=resolved["aggregate_by"],
            write_schedule=resolved["write_schedule"],
            dead_letter_dir=resolved["dead_letter_dir"],
            **processor_options,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"configure(): {exc}") from exc
    provider = ProfileProvider(processors=[processor])
    # Install first, so that global loggers never see a provider that is shutting down.
    previous = _global.install(provider)
    if previous is not None and not previous.is_shut_down:
        previous.shutdown(shutdown_timeout_s)
    return provider


def _create_named(name: str, options: Mapping[str, Mapping[str, Any]], source: str) -> Writer:
    try:
        return create_exporter(name, **options.get(name, {}))
    except ConfigurationError as exc:
        if source == _config.ENVIRONMENT and name not in exporter_names():
            raise ConfigurationError(f"{_config.PROFILETEL_EXPORTERS}: {exc}") from None
        raise


def shutdown_live_providers(timeout_s: float) -> bool:
    """Shut down every provider not shut down yet, within ``timeout_s`` in all.

    :returns: ``True`` if every profile was delivered in time.
    """
    deadline = time.monotonic() + timeout_s
    with main_thread_shutdowns.track():
        results = [
            provider.shutdown(max(0.0, deadline - time.monotonic()))
            for provider in list(_live_providers)
            if not provider.is_shut_down
        ]
    return all(results)


def flush_live_providers(timeout_s: float) -> bool:
    """Flush every provider not shut down yet, within ``timeout_s`` in all; they keep
    running.

    :returns: ``True`` if every profile was delivered in time.
    """
    deadline = time.monotonic() + timeout_s
    results = [
        provider.force_flush(max(0.0, deadline - time.monotonic()))
        for provider in list(_live_providers)
        if not provider.is_shut_down
    ]
    return all(results)


def exit_timeout_s() -> float:
    """``PROFILETEL_EXIT_TIMEOUT_S``, or its default with a warning if it is invalid."""
    try:
        return _config.exit_timeout_from_env()
    except ConfigurationError as exc:
        _logger.warning("%s; using %s s.", exc, _config.DEFAULT_EXIT_TIMEOUT_S)
        return _config.DEFAULT_EXIT_TIMEOUT_S


def reset_after_fork() -> None:
    """In a forked child: fresh locks for the global sink and every provider's datasets."""
    _global.reset_after_fork()
    for provider in list(_live_providers):
        provider._datasets.reset_after_fork()


def _shutdown_at_exit() -> None:
    """Flush every live provider when the interpreter exits, within the exit timeout."""
    shutdown_live_providers(exit_timeout_s())
    if _global.buffered_rows:
        _logger.warning(
            "%d row(s) were logged but profiletel was never configured; they were not "
            "profiled. Call profiletel.configure() at start-up.",
            _global.buffered_rows,
        )


atexit.register(_shutdown_at_exit)
