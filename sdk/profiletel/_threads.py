"""What every thread profiletel starts does first."""

from __future__ import annotations

import signal
from typing import Final

__all__ = ["block_stop_signals"]

STOP_SIGNALS: Final = frozenset(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    if hasattr(signal, name)
)


def block_stop_signals() -> None:
    """Keep stop signals away from the calling thread, so that the kernel delivers them
    to the main thread.

    Python runs signal handlers in the main thread only. A signal the kernel hands to
    another thread leaves a main thread that waits in a lock or a read asleep, and the
    handler never runs: with :func:`profiletel.install_signal_handlers`, SIGTERM could
    then fail to end the process.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
