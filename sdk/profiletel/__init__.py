"""profiletel: whylogs profiles of the data flowing through a running service.

Configure once at start-up, log from anywhere::

    import profiletel

    profiletel.configure(exporters=["local"])
    profiletel.get_logger("orders").log({"amount": 12.5, "country": "NL"})
"""

from __future__ import annotations

import os as _os

# whylogs posts anonymous usage statistics to its own server from some code paths
# (its S3 writer, WhyLabs sessions) unless told not to before it is imported. A
# library inside someone else's service must reach no host it was not configured for.
_os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

from ._config import local_dir_from_env
from ._deadletter import DeadLetter, DeadLetterStore, write_atomic
from ._errors import (
    ConfigurationError,
    ExportError,
    PermanentExportError,
    PluginError,
    ProfiletelError,
    ProviderShutdownError,
    TransientExportError,
)
from ._lifecycle import install_signal_handlers
from ._logger import DatasetLogger
from ._plugins import (
    ENTRY_POINT_GROUP,
    ExporterInfo,
    PluginInfo,
    create_exporter,
    exporter_names,
    hookimpl,
    hookspec,
    list_exporters,
    list_plugins,
    register_plugin,
    unregister_plugin,
)
from ._processor import BatchProfileProcessor, DatasetStatus, ProcessorStatus
from ._profile import BucketProfile, safe_path_part, unsafe_path_part
from ._provider import (
    ProfileProvider,
    ProviderStatus,
    configure,
    get_logger,
    get_provider,
    set_provider,
)
from ._read import ColumnSummary, summarize
from ._rolling import (
    CloseMessage,
    DatasetProfileContainer,
    FlushMessage,
    LoggerMessage,
    LoggerStatus,
    MessageProcessor,
    MultiDatasetRollingLogger,
    PendingWritable,
    Row,
    StatusMessage,
    TrackData,
    TrackMessage,
)
from ._segments import check_segments
from ._time import Schedule, TimeGranularity

__version__ = "0.1.0"

__all__ = [
    "BatchProfileProcessor",
    "BucketProfile",
    "CloseMessage",
    "ColumnSummary",
    "ConfigurationError",
    "DatasetLogger",
    "DatasetProfileContainer",
    "DatasetStatus",
    "DeadLetter",
    "DeadLetterStore",
    "ENTRY_POINT_GROUP",
    "ExportError",
    "ExporterInfo",
    "FlushMessage",
    "LoggerMessage",
    "LoggerStatus",
    "MessageProcessor",
    "MultiDatasetRollingLogger",
    "PendingWritable",
    "PermanentExportError",
    "PluginError",
    "PluginInfo",
    "ProcessorStatus",
    "ProfileProvider",
    "ProfiletelError",
    "ProviderShutdownError",
    "ProviderStatus",
    "Row",
    "Schedule",
    "StatusMessage",
    "TimeGranularity",
    "TrackData",
    "TrackMessage",
    "TransientExportError",
    "check_segments",
    "configure",
    "create_exporter",
    "exporter_names",
    "get_logger",
    "get_provider",
    "hookimpl",
    "hookspec",
    "install_signal_handlers",
    "list_exporters",
    "list_plugins",
    "local_dir_from_env",
    "register_plugin",
    "safe_path_part",
    "set_provider",
    "summarize",
    "unregister_plugin",
    "unsafe_path_part",
    "write_atomic",
]
