"""Exceptions of profiletel.

Bad input raises the built-in ``TypeError`` or ``ValueError``; the types here are for
configuration, plugins and exports, so that a caller can tell them apart.
"""

from __future__ import annotations

__all__ = [
    "ProfiletelError",
    "ConfigurationError",
    "PluginError",
    "ExportError",
    "TransientExportError",
    "PermanentExportError",
    "ProviderShutdownError",
]


class ProfiletelError(Exception):
    """Base class of every exception raised by profiletel itself."""


class ConfigurationError(ProfiletelError, ValueError):
    """An option or environment variable has a value that cannot be used."""


class PluginError(ProfiletelError):
    """A plugin could not be loaded, or two plugins claim the same exporter name."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class ExportError(ProfiletelError):
    """An exporter could not deliver a profile.

    Exporters raise a subclass to tell the retry middleware what to do; any other
    exception, or a ``(False, message)`` result, counts as transient.
    """

    retryable: bool = True

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TransientExportError(ExportError):
    """The destination may accept the profile later: it is tried again."""

    retryable = True


class PermanentExportError(ExportError):
    """Trying again cannot help (bad credentials, missing bucket): the profile goes
    straight to the dead-letter directory."""

    retryable = False


class ProviderShutdownError(ProfiletelError, RuntimeError):
    """``log()`` was called on a provider, processor or logger that has shut down."""
