"""Every environment variable profiletel reads, with its default, in one place, and the
one configuration model that ``configure()`` and ``profiletel config`` both resolve.

Precedence, for every option: an argument to ``configure()``, then the environment
variable, then the default. Exporters declare the variables they read here too
(:data:`EXPORTER_VARIABLES`), so that ``create_exporter()`` fills their options from the
environment and ``profiletel config`` and the docs list them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from ._errors import ConfigurationError
from ._time import BUCKET_GRANULARITIES, Schedule, TimeGranularity

PROFILETEL_EXPORTERS: Final = "PROFILETEL_EXPORTERS"
PROFILETEL_AGGREGATE_BY: Final = "PROFILETEL_AGGREGATE_BY"
PROFILETEL_WRITE_EVERY: Final = "PROFILETEL_WRITE_EVERY"
PROFILETEL_LOCAL_DIR: Final = "PROFILETEL_LOCAL_DIR"
PROFILETEL_DEAD_LETTER_DIR: Final = "PROFILETEL_DEAD_LETTER_DIR"
PROFILETEL_EXIT_TIMEOUT_S: Final = "PROFILETEL_EXIT_TIMEOUT_S"
PROFILETEL_STRICT_PLUGINS: Final = "PROFILETEL_STRICT_PLUGINS"

# Read by the s3 exporter, through create_exporter().
PROFILETEL_S3_BUCKET: Final = "PROFILETEL_S3_BUCKET"
PROFILETEL_S3_PREFIX: Final = "PROFILETEL_S3_PREFIX"
PROFILETEL_S3_ENDPOINT_URL: Final = "PROFILETEL_S3_ENDPOINT_URL"
PROFILETEL_S3_REGION: Final = "PROFILETEL_S3_REGION"

# The variables whylogs reads, so that one environment configures both.
WHYLABS_API_KEY: Final = "WHYLABS_API_KEY"
WHYLABS_DEFAULT_ORG_ID: Final = "WHYLABS_DEFAULT_ORG_ID"
WHYLABS_API_ENDPOINT: Final = "WHYLABS_API_ENDPOINT"

PROFILETEL_MAX_COLUMNS: Final = "PROFILETEL_MAX_COLUMNS"

DEFAULT_EXPORTERS: Final = ("local",)
DEFAULT_AGGREGATE_BY: Final = TimeGranularity.Hour
DEFAULT_WRITE_SCHEDULE: Final = Schedule(TimeGranularity.Minute, 10)
DEFAULT_LOCAL_DIR: Final = "profiles"
DEAD_LETTER_SUBDIR: Final = ".dead-letter"
DEFAULT_EXIT_TIMEOUT_S: Final = 10.0
DEFAULT_WHYLABS_ENDPOINT: Final = "https://api.whylabsapp.com"

ARGUMENT: Final = "argument"
ENVIRONMENT: Final = "environment"
DEFAULT: Final = "default"
MASK: Final = "***"

_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off")

# whylogs costs about a millisecond per column per batch (and more for the first batch
# of a profile); a row wider than this is far more likely a bug than a real schema.
DEFAULT_MAX_COLUMNS: Final = 1_000


def _env(environ: Mapping[str, str] | None, name: str) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():
        return None
    return value


def exporters_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    value = _env(environ, PROFILETEL_EXPORTERS)
    if value is None:
        return DEFAULT_EXPORTERS
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise ConfigurationError(
            f"{PROFILETEL_EXPORTERS}={value!r} names no exporter; "
            "expected comma-separated exporter names such as 'local,s3'"
        )
    return names


def aggregate_by_from_env(environ: Mapping[str, str] | None = None) -> TimeGranularity:
    value = _env(environ, PROFILETEL_AGGREGATE_BY)
    if value is None:
        return DEFAULT_AGGREGATE_BY
    try:
        return check_bucket_granularity(TimeGranularity.parse(value))
    except ValueError as exc:
        raise ConfigurationError(f"{PROFILETEL_AGGREGATE_BY}: {exc}") from None


def write_schedule_from_env(environ: Mapping[str, str] | None = None) -> Schedule | None:
    value = _env(environ, PROFILETEL_WRITE_EVERY)
    if value is None:
        return DEFAULT_WRITE_SCHEDULE
    try:
        return Schedule.parse(value)
    except ValueError as exc:
        raise ConfigurationError(f"{PROFILETEL_WRITE_EVERY}: {exc}") from None


def local_dir_from_env(environ: Mapping[str, str] | None = None) -> str:
    return _env(environ, PROFILETEL_LOCAL_DIR) or DEFAULT_LOCAL_DIR


def dead_letter_dir_from_env(environ: Mapping[str, str] | None = None) -> str:
    value = _env(environ, PROFILETEL_DEAD_LETTER_DIR)
    if value is not None:
        return value
    return os.path.join(local_dir_from_env(environ), DEAD_LETTER_SUBDIR)


def exit_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    value = _env(environ, PROFILETEL_EXIT_TIMEOUT_S)
    if value is None:
        return DEFAULT_EXIT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigurationError(
            f"{PROFILETEL_EXIT_TIMEOUT_S}={value!r} is not a number of seconds >= 0"
        )
    return seconds


def strict_plugins_from_env(environ: Mapping[str, str] | None = None) -> bool:
    value = _env(environ, PROFILETEL_STRICT_PLUGINS)
    if value is None:
        return False
    text = value.strip().lower()
    if text not in _TRUE + _FALSE:
        raise ConfigurationError(
            f"{PROFILETEL_STRICT_PLUGINS}={value!r} is not a switch; expected one of: "
            f"{', '.join(_TRUE + _FALSE)}"
        )
    return text in _TRUE


def max_columns_from_env(environ: Mapping[str, str] | None = None) -> int:
    value = _env(environ, PROFILETEL_MAX_COLUMNS)
    if value is None:
        return DEFAULT_MAX_COLUMNS
    if not value.strip().isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"{PROFILETEL_MAX_COLUMNS}={value!r} is not a whole number of columns >= 1"
        )
    return int(value)


def check_bucket_granularity(granularity: TimeGranularity) -> TimeGranularity:
    if granularity not in BUCKET_GRANULARITIES:
        accepted = ", ".join(g.value.lower() for g in BUCKET_GRANULARITIES)
        raise ValueError(
            f"buckets cannot be {granularity.value.lower()}s long; expected one of: {accepted}"
        )
    return granularity


# Exporter options from the environment


def _check_url(variable: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{variable}={value!r} is not a URL; expected http://host[:port][/path] or "
            "https://host[:port][/path]"
        )
    return value.rstrip("/")


# Loose enough for legacy us-east-1 names (capitals, underscores, up to 255 characters);
# what it catches is a URL or a key pasted where the bare name belongs.
_S3_BUCKET_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{3,255}$")
_REGION_NAME: Final = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _check_bucket(variable: str, value: str) -> str:
    if not _S3_BUCKET_NAME.match(value):
        raise ConfigurationError(
            f"{variable}={value!r} is not an S3 bucket name; expected the bare name: 3 to "
            "255 letters, digits, dots, hyphens and underscores, without s3:// or a key "
            f"prefix (that goes in {PROFILETEL_S3_PREFIX})"
        )
    return value


def _check_region(variable: str, value: str) -> str:
    if not _REGION_NAME.match(value):
        raise ConfigurationError(
            f"{variable}={value!r} is not a region name; expected lowercase letters, digits "
            "and single hyphens, such as eu-west-1"
        )
    return value


def _check_api_key(variable: str, value: str) -> str:
    if not (value.isascii() and value.isprintable()):
        # The value is a secret: the message names the variable, never the value.
        raise ConfigurationError(
            f"{variable} holds characters an HTTP header cannot carry; expected printable "
            "ASCII: copy the key again"
        )
    return value


@dataclass(frozen=True)
class ExporterVariable:
    """An environment variable that fills one option of one exporter.

    :param default: the exporter's default when neither the option nor the variable is
        set, as text for ``profiletel config`` and the docs.
    :param check: returns the value to use, or raises :class:`ConfigurationError` naming
        the variable and the accepted values.
    """

    exporter: str
    option: str
    variable: str
    default: str
    secret: bool = False
    check: Callable[[str, str], str] | None = None


EXPORTER_VARIABLES: Final[tuple[ExporterVariable, ...]] = (
    ExporterVariable("s3", "bucket", PROFILETEL_S3_BUCKET, "(required)", check=_check_bucket),
    ExporterVariable("s3", "prefix", PROFILETEL_S3_PREFIX, "(none)"),
    ExporterVariable("s3", "endpoint_url", PROFILETEL_S3_ENDPOINT_URL, "(AWS)",
                     check=_check_url),
    ExporterVariable("s3", "region", PROFILETEL_S3_REGION, "(boto3's configuration)",
                     check=_check_region),
    ExporterVariable("whylabs", "api_key", WHYLABS_API_KEY, "(required)", secret=True,
                     check=_check_api_key),
    ExporterVariable("whylabs", "org_id", WHYLABS_DEFAULT_ORG_ID, "(from the API key)"),
    ExporterVariable("whylabs", "endpoint", WHYLABS_API_ENDPOINT, DEFAULT_WHYLABS_ENDPOINT,
                     check=_check_url),
)


def exporter_options_from_env(
    exporter: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The options of ``exporter`` set through its environment variables.

    :raises ConfigurationError: for a value its exporter cannot use, naming the variable.
    """
    options: dict[str, str] = {}
    for declared in EXPORTER_VARIABLES:
        if declared.exporter != exporter:
            continue
        value = _env(environ, declared.variable)
        if value is None:
            continue
        value = value.strip()
        options[declared.option] = declared.check(declared.variable, value) if declared.check \
            else value
    return options


# The model: every option, its value and where the value came from


@dataclass(frozen=True)
class Setting:
    """One option of the effective configuration.

    :param option: the ``configure()`` argument, or ``<exporter>.<option>``.
    :param variable: the environment variable that may set it, if any.
    :param source: ``"argument"``, ``"environment"`` or ``"default"``.
    :param secret: the value is shown as ``***`` by :meth:`shown`.
    """

    option: str
    variable: str | None
    value: Any
    source: str
    secret: bool = False

    def shown(self) -> str:
        """The value as text, with a secret masked."""
        if self.secret and self.value is not None:
            return MASK
        if self.value is None:
            return "never" if self.option == "write_schedule" else "-"
        if isinstance(self.value, TimeGranularity):
            return self.value.value.lower()
        if isinstance(self.value, (tuple, list)):
            return ",".join(v if isinstance(v, str) else repr(v) for v in self.value)
        return str(self.value)


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Configuration:
    """The resolved core options of ``configure()``, each with its source."""

    settings: dict[str, Setting]

    def __getitem__(self, option: str) -> Any:
        return self.settings[option].value


def _pick(
    option: str, variable: str | None, argument: Any, from_env: Callable[[], Any],
    environ: Mapping[str, str] | None, *, given: bool,
) -> Setting:
    if given:
        return Setting(option, variable, argument, ARGUMENT)
    value = from_env()
    source = ENVIRONMENT if variable and _env(environ, variable) is not None else DEFAULT
    return Setting(option, variable, value, source)


def resolve(
    *,
    exporters: Sequence[Any] | None = None,
    aggregate_by: TimeGranularity | str | None = None,
    write_schedule: Schedule | str | None = UNSET,
    local_dir: str | os.PathLike[str] | None = None,
    dead_letter_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Configuration:
    """The core options ``configure()`` would use for these arguments and environment.

    :raises ConfigurationError: for an invalid argument or variable, naming it and the
        accepted values.
    """
    settings = [
        _pick("exporters", PROFILETEL_EXPORTERS,
              tuple(exporters) if exporters is not None else None,
              lambda: exporters_from_env(environ), environ, given=exporters is not None),
        _pick("aggregate_by", PROFILETEL_AGGREGATE_BY, _granularity_argument(aggregate_by),
              lambda: aggregate_by_from_env(environ), environ, given=aggregate_by is not None),
        _pick("write_schedule", PROFILETEL_WRITE_EVERY, _schedule_argument(write_schedule),
              lambda: write_schedule_from_env(environ), environ,
              given=write_schedule is not UNSET),
        _pick("local_dir", PROFILETEL_LOCAL_DIR,
              os.fspath(local_dir) if local_dir is not None else None,
              lambda: local_dir_from_env(environ), environ, given=local_dir is not None),
        _dead_letter_setting(dead_letter_dir, local_dir, environ),
        _pick("exit_timeout_s", PROFILETEL_EXIT_TIMEOUT_S, None,
              lambda: exit_timeout_from_env(environ), environ, given=False),
        _pick("strict_plugins", PROFILETEL_STRICT_PLUGINS, None,
              lambda: strict_plugins_from_env(environ), environ, given=False),
    ]
    return Configuration({setting.option: setting for setting in settings})


def _granularity_argument(value: TimeGranularity | str | None) -> TimeGranularity | None:
    if value is None:
        return None
    try:
        return check_bucket_granularity(TimeGranularity.parse(value))
    except ValueError as exc:
        raise ConfigurationError(f"aggregate_by: {exc}") from None


def _schedule_argument(value: Schedule | str | None) -> Schedule | None:
    if value is UNSET or value is None or isinstance(value, Schedule):
        return None if value is UNSET else value
    try:
        return Schedule.parse(str(value))
    except ValueError as exc:
        raise ConfigurationError(f"write_schedule: {exc}") from None


def _dead_letter_setting(
    dead_letter_dir: str | os.PathLike[str] | None,
    local_dir: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None,
) -> Setting:
    option, variable = "dead_letter_dir", PROFILETEL_DEAD_LETTER_DIR
    if dead_letter_dir is not None:
        return Setting(option, variable, os.fspath(dead_letter_dir), ARGUMENT)
    from_env = _env(environ, variable)
    if from_env is not None:
        return Setting(option, variable, from_env, ENVIRONMENT)
    # Beside the local exporter's folder, wherever that came from.
    if local_dir is not None:
        return Setting(option, variable, os.path.join(local_dir, DEAD_LETTER_SUBDIR), ARGUMENT)
    source = ENVIRONMENT if _env(environ, PROFILETEL_LOCAL_DIR) is not None else DEFAULT
    return Setting(option, variable, dead_letter_dir_from_env(environ), source)


def exporter_settings(
    exporter_options: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Setting]:
    """One :class:`Setting` per declared exporter variable, as ``create_exporter()``
    would fill it; secrets are marked, never shown.

    :raises ConfigurationError: for an invalid variable, naming it.
    """
    given = exporter_options or {}
    settings = []
    for declared in EXPORTER_VARIABLES:
        option = f"{declared.exporter}.{declared.option}"
        arguments = given.get(declared.exporter, {})
        if declared.option in arguments:
            value, source = arguments[declared.option], ARGUMENT
        else:
            from_env = exporter_options_from_env(declared.exporter, environ)
            if declared.option in from_env:
                value, source = from_env[declared.option], ENVIRONMENT
            else:
                # The default is a description, never a secret.
                settings.append(Setting(option, declared.variable, declared.default, DEFAULT))
                continue
        settings.append(Setting(option, declared.variable, value, source, declared.secret))
    return settings
