"""The retry middleware every exporter runs behind.

Each exporter gets an :class:`ExportChannel`: its own thread, so a slow or hung
destination delays neither aggregation nor the other exporters, and its own list of
pending profiles. A write asks every channel for one *round*: one attempt at each
pending profile. A profile that fails stays pending for the next round, up to
``max_attempts`` in all, then goes to the dead-letter directory; a permanent failure
goes there at once. An exporter that stops answering keeps at most ``max_pending``
profiles in memory; older ones go to the dead-letter directory.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from whylogs.api.writer import Writer

from ._deadletter import DeadLetterStore
from ._errors import ExportError
from ._profile import BucketProfile
from ._threads import block_stop_signals

__all__ = ["ExportChannel", "ExportOutcome", "call_exporter", "exporter_name"]

_logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS: Final = 3
DEFAULT_MAX_PENDING: Final = 1_000


def exporter_name(exporter: Writer) -> str:
    """The name used in logs, status and dead-letter paths."""
    name = getattr(exporter, "exporter_name", None)
    return str(name) if name else type(exporter).__name__


@dataclass(frozen=True)
class ExportOutcome:
    """What one call to an exporter came to."""

    ok: bool
    retryable: bool = True
    error: str = ""
    retry_after_s: float | None = None


def call_exporter(exporter: Writer, profile: BucketProfile) -> ExportOutcome:
    """Call ``exporter.write`` once and classify the result; never raises ``Exception``."""
    try:
        result = exporter.write(profile)
    except ExportError as exc:
        return ExportOutcome(False, exc.retryable, _describe(exc), exc.retry_after_s)
    except Exception as exc:
        return ExportOutcome(False, True, _describe(exc))
    success, message = _unpack(result)
    if success:
        return ExportOutcome(True)
    return ExportOutcome(False, True, f"exporter returned failure: {message}")


def _unpack(result: Any) -> tuple[bool, Any]:
    if isinstance(result, tuple) and len(result) == 2:
        return bool(result[0]), result[1]
    return bool(result), result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Pending:
    profile: BucketProfile
    attempts: int = 0
    last_error: str = ""
    not_before_s: float = 0.0


class ExportChannel:
    """One exporter, the profiles it still owes, and the thread that sends them."""

    def __init__(
        self,
        exporter: Writer,
        dead_letters: DeadLetterStore,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.exporter = exporter
        self.name = exporter_name(exporter)
        self._dead_letters = dead_letters
        self._max_attempts = max_attempts
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: dict[int, _Pending] = {}
        self._in_flight: _Pending | None = None
        self._requested = 0
        self._completed = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.exported = 0
        self.dead_lettered = 0
        self.lost = 0
        self.calls = 0

    # Called from the processor

    def add(self, profiles: list[BucketProfile]) -> None:
        with self._cond:
            for profile in profiles:
                item = _Pending(profile)
                self._pending[id(item)] = item
            excess = len(self._pending) - self._max_pending
            # The dict keeps insertion order, so the first profiles are the oldest.
            oldest = [self._pending.pop(key) for key in list(self._pending)[:max(0, excess)]]
        for item in oldest:
            self._dead_letter(
                item,
                item.last_error
                or f"more than {self._max_pending} profiles were waiting for this exporter",
            )

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + (self._in_flight is not None)

    def request_round(self) -> int:
        """Ask for one attempt at every pending profile. Returns a ticket for
        :meth:`wait_round`."""
        with self._cond:
            self._ensure_thread()
            self._requested += 1
            self._cond.notify_all()
            return self._requested

    def wait_round(self, ticket: int, deadline_s: float) -> bool:
        """Wait until the round of ``ticket`` is done or the monotonic deadline passes."""
        with self._cond:
            while self._completed < ticket:
                remaining = deadline_s - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

    def retry_delay_s(self) -> float | None:
        """Seconds until the earliest pending profile may be tried; ``None`` if none."""
        with self._cond:
            if not self._pending:
                return None
            earliest = min(item.not_before_s for item in self._pending.values())
            return max(0.0, earliest - time.monotonic())

    def dead_letter_remaining(self, reason: str) -> None:
        """Give up on everything still pending (shutdown ran out of time)."""
        with self._cond:
            left = list(self._pending.values())
            if self._in_flight is not None:
                left.insert(0, self._in_flight)
                self._in_flight = None
            self._pending = {}
            self._closed = True
            self._cond.notify_all()
        for item in left:
            self._dead_letter(item, item.last_error or reason)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's thread and its profiles."""
        self._cond = threading.Condition()
        self._pending = {}
        self._in_flight = None
        self._requested = self._completed = 0
        self._thread = None
        self._closed = False

    # The channel's own thread

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name=f"profiletel-export-{self.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        block_stop_signals()
        while True:
            with self._cond:
                while self._completed >= self._requested and not self._closed:
                    self._cond.wait()
                if self._closed and self._completed >= self._requested:
                    return
                ticket = self._requested
            try:
                self._round()
            except Exception:
                _logger.exception("Export round for exporter %s failed; it is retried at the "
                                  "next write.", self.name)
            with self._cond:
                self._completed = ticket
                self._cond.notify_all()

    def _round(self) -> None:
        with self._cond:
            now = time.monotonic()
            due = [item for item in self._pending.values() if item.not_before_s <= now]
        for item in due:
            with self._cond:
                if self._pending.pop(id(item), None) is None:
                    return  # shutdown dead-lettered what was left
                self._in_flight = item
            outcome = call_exporter(self.exporter, item.profile)
            with self._cond:
                self.calls += 1
                abandoned = self._in_flight is not item
                self._in_flight = None
            if abandoned:
                return
            self._settle(item, outcome)

    def _settle(self, item: _Pending, outcome: ExportOutcome) -> None:
        if outcome.ok:
            self.exported += 1
            return
        item.attempts += 1
        item.last_error = outcome.error
        if not outcome.retryable:
            _logger.error(
                "Exporter %s refused the profile of dataset %s, bucket %s permanently (%s). "
                "Fix the exporter's configuration, then replay the dead-letter directory %s.",
                self.name, item.profile.dataset_id, item.profile.bucket_start, outcome.error,
                self._dead_letters.directory,
            )
            self._dead_letter(item, outcome.error)
            return
        if item.attempts >= self._max_attempts:
            self._dead_letter(item, outcome.error)
            return
        if outcome.retry_after_s:
            item.not_before_s = time.monotonic() + outcome.retry_after_s
        _logger.warning(
            "Exporter %s failed on dataset %s, bucket %s (attempt %d of %d: %s); it is tried "
            "again at the next write.",
            self.name, item.profile.dataset_id, item.profile.bucket_start, item.attempts,
            self._max_attempts, outcome.error,
        )
        with self._cond:
            if not self._closed:
                self._pending[id(item)] = item
                return
        self._dead_letter(item, outcome.error)

    def _dead_letter(self, item: _Pending, reason: str) -> None:
        try:
            path = self._dead_letters.put(item.profile, self.name, item.attempts, reason)
        except Exception as exc:
            # OSError for the disk; anything else means the profile cannot be serialized.
            self.lost += 1
            _logger.error(
                "Profile of dataset %s, bucket %s could not be delivered by exporter %s nor "
                "written to the dead-letter directory (%s: %s); it is lost and counted in "
                "status().profiles_lost. Make %s writable; if it is, please report a bug.",
                item.profile.dataset_id, item.profile.bucket_start, self.name,
                type(exc).__name__, exc, self._dead_letters.directory,
            )
            return
        self.dead_lettered += 1
        _logger.error(
            "Exporter %s could not deliver the profile of dataset %s, bucket %s after %d "
            "attempt(s) (%s); it was written to %s. Run `profiletel replay %s --exporter %s` "
            "once the destination is back.",
            self.name, item.profile.dataset_id, item.profile.bucket_start, item.attempts,
            reason, path, self._dead_letters.directory, self.name,
        )
