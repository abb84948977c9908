"""The process around a provider: forks, SIGTERM, and the exit of worker processes.

Every fork is handled here, in one ``os.register_at_fork`` hook: the child gets new
locks, a new worker and empty profiles, because the parent exports what it held.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from multiprocessing import util as _mp_util
from types import FrameType
from typing import Any, Final

from . import _plugins, _processor, _provider
from ._errors import ConfigurationError
from ._threads import block_stop_signals

__all__ = ["install_signal_handlers"]

_logger = logging.getLogger(__name__)

# The handler waits this much longer than its timeout for the flush thread, which bounds
# it even if the interrupted code held a lock the flush needs.
_WAIT_MARGIN_S: Final = 1.0

_SignalHandler = Callable[[int, FrameType | None], Any] | int | None

# The handler each signal had before install_signal_handlers() replaced it.
_previous: dict[int, _SignalHandler] = {}
_timeout_s: dict[int, float] = {}


def install_signal_handlers(
    timeout_s: float | None = None, signals: Iterable[int] = (signal.SIGTERM,)
) -> None:
    """Flush profiletel when the process is asked to stop, then let the stop proceed.

    Opt-in, for containers and process managers that stop a service with SIGTERM.
    On each of ``signals``: if the handler that was installed before is a Python
    function, the providers are flushed within ``timeout_s`` and that function is
    called (it may keep the process serving for a while, so providers keep running);
    if it was the default action, the providers are shut down within ``timeout_s``
    and the signal is raised again with the default action, so the process ends by
    that signal as it would have; if the signal was ignored, the providers are
    flushed and the signal stays ignored.

    Call it once, from the main thread, after any other library installed its own
    handler. A second call for the same signal only updates the timeout.

    Known limitation: Python runs the handler only when the main thread executes Python
    code, so a signal that arrives as the main thread enters a blocking call that never
    returns (a ``multiprocessing`` pool worker at ``terminate()``) is not acted upon,
    where the default action would have ended the process.

    :param timeout_s: seconds the flush may take; defaults to ``PROFILETEL_EXIT_TIMEOUT_S``
        (10 s unless set).
    :raises ConfigurationError: outside the main thread, or for a negative timeout.
    """
    if timeout_s is None:
        timeout_s = _provider.exit_timeout_s()
    if not timeout_s >= 0:
        raise ConfigurationError(f"timeout_s must be a number of seconds >= 0, got {timeout_s!r}")
    if threading.current_thread() is not threading.main_thread():
        raise ConfigurationError(
            "install_signal_handlers() must be called from the main thread, where Python "
            "runs signal handlers"
        )
    _flusher.ensure_started()
    for signum in signals:
        signum = signal.Signals(signum)
        _timeout_s[signum] = timeout_s
        if signum in _previous:
            continue
        _previous[signum] = signal.getsignal(signum)
        signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    previous = _previous.get(signum, signal.SIG_DFL)
    timeout_s = _timeout_s.get(signum, _provider.exit_timeout_s())
    shutdowns = _provider.main_thread_shutdowns
    if _flusher.busy:
        return  # an earlier signal is being handled, and goes on once flushed
    if shutdowns.depth:
        # This interrupted a shutdown (the exit hook, say): let it finish, then go on.
        shutdowns.after = lambda: _proceed(signum, frame, previous)
        return
    ends = not callable(previous) and previous != signal.SIG_IGN
    # When the process ends here, shut down; otherwise the previous handler may keep
    # serving for a while (gunicorn's graceful stop), so loggers must keep working.
    action = _provider.shutdown_live_providers if ends else _provider.flush_live_providers
    _run_bounded(action, timeout_s, signum)
    _proceed(signum, frame, previous)


def _proceed(signum: int, frame: FrameType | None, previous: _SignalHandler) -> None:
    """Do what the signal would have done without profiletel."""
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    # The default action, or a handler not installed from Python (which cannot be
    # called from here): end the process by this signal.
    if os.getpid() == 1:
        # The init process of a container: the kernel drops a signal it has no handler
        # for, so exit the way a shell reports death by that signal.
        raise SystemExit(128 + signum)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _run_bounded(action: Callable[[float], bool], timeout_s: float, signum: int) -> None:
    if not _flusher.run(action, timeout_s):
        _logger.warning(
            "On %s, profiletel could not deliver every profile within %s s; what was not "
            "delivered is in the dead-letter directory, or lost if the flush did not finish. "
            "Give install_signal_handlers() a longer timeout_s if the exporters are slow.",
            signal.Signals(signum).name,
            timeout_s,
        )


class _SignalFlusher:
    """The thread that flushes when a signal asks, started with the handlers.

    A handler runs in the main thread between two bytecodes of whatever it interrupted,
    which may hold a lock the flush needs, or one of threading's own locks (so the
    handler must not start a thread). It hands the flush to this thread and waits a
    bounded time.
    """

    def __init__(self) -> None:
        self._request = threading.Event()
        self._done = threading.Event()
        self._action: Callable[[float], bool] | None = None
        self._timeout_s = 0.0
        self._outcome = False
        self._thread: threading.Thread | None = None
        self._serving = False
        self.busy = False

    def ensure_started(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._serve, name="profiletel-signal-flush", daemon=True
            )
            self._thread.start()

    def run(self, action: Callable[[float], bool], timeout_s: float) -> bool:
        """Flush with ``action`` on the flush thread; ``False`` if it failed or was late."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._serving:
            return False  # no thread, or still stuck in a flush that timed out before
        self.busy = True
        try:
            self._done.clear()
            self._action, self._timeout_s, self._outcome = action, timeout_s, False
            self._request.set()
            return self._done.wait(timeout_s + _WAIT_MARGIN_S) and self._outcome
        finally:
            self.busy = False

    def _serve(self) -> None:
        block_stop_signals()
        while True:
            self._request.wait()
            self._request.clear()
            action, timeout_s = self._action, self._timeout_s
            self._serving = True
            try:
                self._outcome = action is not None and bool(action(timeout_s))
            except Exception:
                _logger.exception(
                    "profiletel's flush on a signal failed; what it held may be lost. Please "
                    "report this as a bug."
                )
            finally:
                self._serving = False
            self._done.set()


_flusher = _SignalFlusher()


def _after_fork_in_child() -> None:
    global _flusher
    _processor.reset_processors_after_fork()
    _provider.reset_after_fork()
    _plugins.reset_after_fork()
    # The parent's flush thread does not exist here, and its events may be mid-use.
    _flusher = _SignalFlusher()
    if _previous:
        _flusher.ensure_started()


class _ForkToken:
    """A long-lived object for ``multiprocessing.util.register_after_fork``, which keeps
    only a weak reference to it."""


_token: Final = _ForkToken()


def _in_multiprocessing_child(_: _ForkToken) -> None:
    # multiprocessing ends its children with os._exit(), which skips atexit hooks; its
    # own exit finalizers do run when a child returns normally (Pool.close() and join()).
    _mp_util.Finalize(None, _provider._shutdown_at_exit, exitpriority=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
_mp_util.register_after_fork(_token, _in_multiprocessing_child)
