"""Exporter plugins: the hook specification and their discovery through entry points.

Every exporter, the built-in ones included, is a module or object named by an entry
point in the ``profiletel`` group that implements :func:`profiletel_exporters`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final

import pluggy
from whylogs.api.writer import Writer

from . import _config
from ._config import PROFILETEL_STRICT_PLUGINS
from ._errors import ConfigurationError, PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "hookimpl",
    "hookspec",
    "ExporterFactory",
    "PluginInfo",
    "ExporterInfo",
    "create_exporter",
    "exporter_names",
    "list_plugins",
    "plugin_manager",
]

_logger = logging.getLogger(__name__)

PROJECT_NAME: Final = "profiletel"
ENTRY_POINT_GROUP: Final = "profiletel"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

ExporterFactory = Callable[..., Writer]


class ExporterSpec:
    """The hooks a profiletel plugin may implement."""

    @hookspec
    def profiletel_exporters(self) -> Mapping[str, ExporterFactory]:  # type: ignore[empty-body]
        """Return the exporters this plugin provides, by name.

        A factory is called with the keyword options given to
        :func:`profiletel.create_exporter` and returns a whylogs ``Writer``. It should
        raise :class:`profiletel.ConfigurationError` for a missing or invalid option,
        so that the mistake shows at start-up rather than at the first export.
        """


@dataclass(frozen=True)
class PluginInfo:
    """One entry point of the ``profiletel`` group, and whether it loaded."""

    name: str
    distribution: str | None
    version: str | None
    loaded: bool
    error: str | None = None


@dataclass(frozen=True)
class ExporterInfo:
    """One exporter name, the plugin that provides it, and its factory."""

    name: str
    plugin: PluginInfo
    factory: ExporterFactory


def _is_strict() -> bool:
    try:
        return _config.strict_plugins_from_env()
    except ConfigurationError:
        # configure() reports the bad value; loading plugins goes on leniently meanwhile.
        return False


class _Registry:
    """Loads the entry points once, lazily, and maps exporter names to factories."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._manager: pluggy.PluginManager | None = None
        self._plugins: dict[str, PluginInfo] = {}
        self._exporters: dict[str, ExporterInfo] | None = None

    def manager(self) -> pluggy.PluginManager:
        with self._lock:
            if self._manager is None:
                self._manager = self._load()
            return self._manager

    def _load(self) -> pluggy.PluginManager:
        manager = pluggy.PluginManager(PROJECT_NAME)
        manager.add_hookspecs(ExporterSpec)
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            # Two distributions may use the same entry point name; pluggy needs unique
            # plugin names, and their exporter names are checked against each other later.
            name = entry_point.name
            if name in self._plugins:
                name = f"{entry_point.name} ({dist_name or 'unknown distribution'})"
                if name in self._plugins:
                    continue
            try:
                plugin = entry_point.load()
                manager.register(plugin, name=name)
            except Exception as exc:
                self._fail(name, dist_name, dist_version, exc)
                continue
            self._plugins[name] = PluginInfo(name, dist_name, dist_version, loaded=True)
        return manager

    def _fail(self, name: str, dist: str | None, version: str | None, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self._plugins[name] = PluginInfo(name, dist, version, loaded=False, error=reason)
        if _is_strict():
            raise PluginError(
                f"plugin {name!r} from distribution {dist or 'unknown'} failed: {reason}",
                plugin=name,
            ) from exc
        _logger.warning(
            "Exporter plugin %r from distribution %s failed and is skipped (%s); the other "
            "exporters keep working. Fix or uninstall that distribution; set %s=1 to make "
            "this an error.",
            name, dist or "unknown", reason, PROFILETEL_STRICT_PLUGINS,
        )

    def exporters(self) -> dict[str, ExporterInfo]:
        manager = self.manager()
        with self._lock:
            if self._exporters is not None:
                return self._exporters
            found: dict[str, ExporterInfo] = {}
            for impl in manager.hook.profiletel_exporters.get_hookimpls():
                info = self._plugins.get(impl.plugin_name) or PluginInfo(
                    impl.plugin_name, None, None, loaded=True
                )
                try:
                    provided: dict[str, ExporterFactory] = dict(impl.function())  # type: ignore[call-overload]
                except Exception as exc:
                    self._fail(impl.plugin_name, info.distribution, info.version, exc)
                    continue
                for name, factory in provided.items():
                    if name in found:
                        other = found[name].plugin
                        raise PluginError(
                            f"exporter name {name!r} is registered twice: by plugin "
                            f"{other.name!r} ({other.distribution or 'unknown distribution'}) "
                            f"and by plugin {info.name!r} "
                            f"({info.distribution or 'unknown distribution'})",
                            plugin=info.name,
                        )
                    found[name] = ExporterInfo(name, info, factory)
            self._exporters = found
            return found

    def plugins(self) -> list[PluginInfo]:
        self.exporters()
        with self._lock:
            return sorted(self._plugins.values(), key=lambda p: p.name)

    def register(self, plugin: Any, name: str) -> None:
        """Register a plugin object directly (tests, applications with in-house exporters)."""
        manager = self.manager()
        with self._lock:
            manager.register(plugin, name=name)
            self._plugins[name] = PluginInfo(name, None, None, loaded=True)
            self._exporters = None

    def unregister(self, name: str) -> None:
        manager = self.manager()
        with self._lock:
            manager.unregister(name=name)
            self._plugins.pop(name, None)
            self._exporters = None

    def failed(self) -> list[PluginInfo]:
        with self._lock:
            return [info for info in self._plugins.values() if not info.loaded]

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()


_registry = _Registry()


def reset_after_fork() -> None:
    """In a forked child: a new lock, in case a thread of the parent held it."""
    _registry.reset_after_fork()


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every ``profiletel`` entry point loaded."""
    return _registry.manager()


def register_plugin(plugin: Any, name: str) -> None:
    """Register a plugin object without an entry point, for in-house exporters and tests."""
    _registry.register(plugin, name)


def unregister_plugin(name: str) -> None:
    _registry.unregister(name)


def list_plugins() -> list[PluginInfo]:
    return _registry.plugins()


def list_exporters() -> list[ExporterInfo]:
    return sorted(_registry.exporters().values(), key=lambda e: e.name)


def exporter_names() -> list[str]:
    return sorted(_registry.exporters())


def create_exporter(name: str, **options: Any) -> Writer:
    """Build a registered exporter by its name.

    :param name: the exporter name a plugin registered (``"local"``, ``"s3"`` ...).
    :param options: passed to the plugin's factory, over the options its environment
        variables set (see ``EXPORTER_VARIABLES`` in ``profiletel._config``).
    :raises ConfigurationError: if no plugin provides ``name``, an environment variable
        of the exporter is invalid, or the factory rejects the options.
    """
    options = {**_config.exporter_options_from_env(name), **options}
    exporters = _registry.exporters()
    info = exporters.get(name)
    if info is None:
        known = ", ".join(sorted(exporters)) or "none"
        failed = "".join(
            f"; plugin {p.name!r} from distribution {p.distribution or 'unknown'} failed to "
            f"load ({p.error})"
            for p in _registry.failed()
        )
        raise ConfigurationError(
            f"no exporter named {name!r} is registered; known: {known}{failed}. "
            "Run `profiletel plugins` to see every plugin and its status."
        )
    try:
        exporter = info.factory(**options)
    except ConfigurationError:
        raise
    except TypeError as exc:
        raise ConfigurationError(f"exporter {name!r} rejected its options: {exc}") from exc
    if not isinstance(exporter, Writer):
        raise PluginError(
            f"exporter {name!r} from plugin {info.plugin.name!r} returned "
            f"{type(exporter).__name__}, which is not a whylogs Writer",
            plugin=info.plugin.name,
        )
    return exporter
