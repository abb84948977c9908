"""The retry middleware every exporter runs behind.

Each exporter gets an :class:`ExportChannel`: its own thread, so a slow or hung
destination delays neither aggregation nor the other exporters, and its own list of
pending profiles. A write asks every channel for one *round*: one attempt at each
pending profile. A profile that fails stays pending for the next round, up to
``max_attempts`` in all, then goes to the dead-letter directory; a permanent failure
goes there at once. Beyond a few failed profiles per exporter, the others wait in the
spool on disk (:mod:`._spool`), not in memory; once an attempt in a round fails, the
spooled ones wait for a round in which the destination answers.
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
from ._spool import Spool, SpooledProfile
from ._threads import block_stop_signals
from ._time import iso_utc

__all__ = ["ExportChannel", "ExportOutcome", "call_exporter", "exporter_name"]

_logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS: Final = 3
# Failed profiles an exporter keeps in memory for their retry; further ones are spooled.
MAX_RETRIES_IN_MEMORY: Final = 16


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
    """Call ``exporter.write`` once and classify the result; never raises."""
    try:
        result = exporter.write(profile)
    except ExportError as exc:
        return ExportOutcome(False, exc.retryable, _describe(exc), exc.retry_after_s)
    except BaseException as exc:
        # Even SystemExit or KeyboardInterrupt from a plugin: on this thread they would
        # only end the channel and lose the profile in flight.
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
    # None while the profile waits in the spool, as ``spilled``.
    profile: BucketProfile | None
    dataset_id: str
    bucket_start: str
    attempts: int = 0
    last_error: str = ""
    not_before_s: float = 0.0
    spilled: SpooledProfile | None = None

    @classmethod
    def of(cls, profile: BucketProfile) -> _Pending:
        return cls(profile, profile.dataset_id, iso_utc(profile.bucket_start_ms))


class ExportChannel:
    """One exporter, the profiles it still owes, and the thread that sends them."""

    def __init__(
        self,
        exporter: Writer,
        dead_letters: DeadLetterStore,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.exporter = exporter
        self.name = exporter_name(exporter)
        self._dead_letters = dead_letters
        self._max_attempts = max_attempts
        self._cond = threading.Condition()
        self._pending: dict[int, _Pending] = {}
        self._in_flight: _Pending | None = None
        self._requested = 0
        self._completed = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._spool = Spool(dead_letters.directory, self.name)
        self._held = 0  # failed profiles waiting in memory
        self._failing = False  # whether the last attempt failed
        self.exported = 0
        self.dead_lettered = 0
        self.lost = 0
        self.calls = 0

    # Called from the processor

    def add(self, profiles: list[BucketProfile]) -> None:
        """Take ``profiles`` for the next round; while the exporter fails and its memory
        allowance is taken, straight into the spool."""
        with self._cond:
            spool = self._failing and self._held >= MAX_RETRIES_IN_MEMORY
        items = [_Pending.of(profile) for profile in profiles]
        if spool:
            for item in items:
                self._spill(item)
        with self._cond:
            closed = self._closed
            if not closed:
                for item in items:
                    self._pending[id(item)] = item
        if closed:
            # A write that finished after shutdown gave up waiting for it.
            for item in items:
                self._dead_letter(item, "the exporter was closed before this profile came")

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
                # The exporter was called and has not answered: that counts as an attempt.
                self._in_flight.attempts += 1
                left.insert(0, self._in_flight)
                self._in_flight = None
            self._pending = {}
            self._held = 0
            self._closed = True
            self._cond.notify_all()
        for item in left:
            self._dead_letter(item, item.last_error or reason)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._spool.close()

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's thread and its profiles."""
        self._cond = threading.Condition()
        self._pending = {}
        self._held = 0
        self._failing = False
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
        failed = False
        for item in due:
            if failed and item.spilled is not None:
                # Reading spooled profiles back is costly; while the destination fails,
                # they wait for a round in which it answers.
                continue
            with self._cond:
                if self._pending.pop(id(item), None) is None:
                    return  # shutdown dead-lettered what was left
                if item.attempts and item.spilled is None:
                    self._held -= 1
                self._in_flight = item
            profile = self._profile_of(item)
            if profile is None:
                with self._cond:
                    self._in_flight = None
                continue
            outcome = call_exporter(self.exporter, profile)
            with self._cond:
                self.calls += 1
                abandoned = self._in_flight is not item
                self._in_flight = None
            if abandoned:
                return
            self._settle(item, outcome)
            failed = failed or not outcome.ok

    def _profile_of(self, item: _Pending) -> BucketProfile | None:
        """The item's profile, read back from the spool if it waits there; ``None``
        (and the profile counted as lost) if it cannot be read."""
        if item.profile is not None:
            return item.profile
        assert item.spilled is not None
        try:
            return item.spilled.load()
        except Exception as exc:
            self.lost += 1
            _logger.error(
                "The spooled profile of dataset %r, bucket %s could not be read back from %s "
                "(%s); it is lost. Check the disk under %s.",
                item.dataset_id, item.bucket_start, item.spilled.path, exc,
                item.spilled.path.parent,
            )
            return None

    def _settle(self, item: _Pending, outcome: ExportOutcome) -> None:
        self._failing = not outcome.ok
        if outcome.ok:
            self.exported += 1
            if item.spilled is not None:
                self._spool.remove(item.spilled.path)
            return
        item.attempts += 1
        item.last_error = outcome.error
        if not outcome.retryable:
            self._dead_letter(item, outcome.error, permanent=True)
            return
        if item.attempts >= self._max_attempts:
            self._dead_letter(item, outcome.error)
            return
        if outcome.retry_after_s:
            item.not_before_s = time.monotonic() + outcome.retry_after_s
        _logger.warning(
            "Exporter %s failed on dataset %s, bucket %s (attempt %d of %d: %s); it is tried "
            "again at the next write.",
            self.name, item.dataset_id, item.bucket_start, item.attempts,
            self._max_attempts, outcome.error,
        )
        self._hold(item)
        with self._cond:
            if not self._closed:
                self._pending[id(item)] = item
                if item.spilled is None:
                    self._held += 1
                return
        self._dead_letter(item, outcome.error)

    def _hold(self, item: _Pending) -> None:
        """Keep a failed profile for its retry: in memory while few wait, else in the
        spool (in memory after all if the spool cannot be written)."""
        if item.spilled is not None or item.profile is None:
            item.profile = None
            return
        with self._cond:
            crowded = self._held >= MAX_RETRIES_IN_MEMORY
        if crowded:
            self._spill(item)

    def _spill(self, item: _Pending) -> None:
        assert item.profile is not None
        try:
            item.spilled = self._spool.put(item.profile)
        except OSError as exc:
            _logger.warning(
                "Could not spool a profile of dataset %s to %s (%s); it waits in memory. "
                "Make that folder writable so that failed exports do not pile up in memory.",
                item.dataset_id, self._spool.folder, exc,
            )
            return
        item.profile = None

    def _dead_letter(self, item: _Pending, reason: str, *, permanent: bool = False) -> None:
        # A spooled profile is dead-lettered from its file, not read back.
        profile: Any = item.spilled if item.profile is None else item.profile
        try:
            path = self._dead_letters.put(profile, self.name, item.attempts, reason)
        except Exception as exc:
            # A full disk, or a profile whylogs cannot serialize: either way it is gone,
            # and the count and the ERROR below are all that is left to say so.
            self.lost += 1
            _logger.error(
                "Profile of dataset %r, bucket %s could not be delivered by exporter %s nor "
                "written to the dead-letter directory (%s); it is lost. If the error is about "
                "the disk, make %s writable; otherwise please report it as a bug.",
                item.dataset_id, item.bucket_start, self.name, exc,
                self._dead_letters.directory,
            )
            return
        self.dead_lettered += 1
        if item.spilled is not None:
            self._spool.remove(item.spilled.path)
        if permanent:
            _logger.error(
                "Exporter %s refused the profile of dataset %r, bucket %s permanently (%s); "
                "it was written to %s. Fix what the message says, then run "
                "`profiletel replay %s --exporter %s`.",
                self.name, item.dataset_id, item.bucket_start, reason, path,
                self._dead_letters.directory, self.name,
            )
            return
        _logger.error(
            "Exporter %s could not deliver the profile of dataset %r, bucket %s after %d "
            "attempt(s) (%s); it was written to %s. Run `profiletel replay %s --exporter %s` "
            "once the destination is back.",
            self.name, item.dataset_id, item.bucket_start, item.attempts,
            reason, path, self._dead_letters.directory, self.name,
        )
